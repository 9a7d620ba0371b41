"""Fine-tuning SAM's mask decoder on annotated planes, and measuring decoders.

``finetune`` is a generator of ``ProgressEvent``s returning a ``FinetuneResult``;
``run_finetune`` drains it. ``evaluate`` scores a model's box- and point-prompted masks on
annotated data. See docs/finetune.md.

Importing this package loads torch (it is not imported when napari scans plugins).
"""

from .data import Plane, load_planes, split_planes
from .evaluate import evaluate, iter_evaluate
from .events import FinetuneResult, ProgressEvent, TrainingDiverged
from .train import finetune, run_finetune

__all__ = [
    "FinetuneResult",
    "Plane",
    "ProgressEvent",
    "TrainingDiverged",
    "evaluate",
    "finetune",
    "iter_evaluate",
    "load_planes",
    "run_finetune",
    "split_planes",
]
