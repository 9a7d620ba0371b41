"""Fine-tuning SAM's mask decoder on annotated planes, and measuring decoders.

``finetune`` is a generator of ``ProgressEvent``s returning a ``FinetuneResult``;
``run_finetune`` drains it. ``evaluate`` scores a model's box- and point-prompted masks on
annotated data. See docs/finetune.md.

Importing this package loads torch (it is not imported when napari scans plugins).
"""

from napari_devosam.finetune.data import Plane, load_planes, split_planes
from napari_devosam.finetune.evaluate import evaluate, iter_evaluate
from napari_devosam.finetune.events import FinetuneResult, ProgressEvent, TrainingDiverged
from napari_devosam.finetune.train import finetune, run_finetune

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
