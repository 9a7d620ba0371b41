"""Fine-tuning SAM's mask decoder on annotated planes, and measuring decoders.

``finetune`` is a generator of ``ProgressEvent``s returning a ``FinetuneResult``;
``run_finetune`` drains it. ``evaluate`` scores a model's box- and point-prompted masks on
annotated data. See docs/finetune.md.

Importing this package loads torch (it is not imported when napari scans plugins).

The package is also the top-level face ``napari_devosam.finetune``: Python binds a subpackage
to its parent's attribute of the same name, so the package itself is callable, and
``napari_devosam.finetune(data_dirs, sam, out=...)`` is ``finetune.train.finetune(...)``.
"""

import sys as _sys
from types import ModuleType as _ModuleType

from napari_devosam.finetune.data import TrainingPlane, load_planes, split_planes
from napari_devosam.finetune.evaluate import evaluate, iter_evaluate
from napari_devosam.finetune.events import FinetuneResult, ProgressEvent, TrainingDiverged
from napari_devosam.finetune.train import finetune, run_finetune

__all__ = [
    "FinetuneResult",
    "ProgressEvent",
    "TrainingDiverged",
    "TrainingPlane",
    "evaluate",
    "finetune",
    "iter_evaluate",
    "load_planes",
    "run_finetune",
    "split_planes",
]


class _CallablePackage(_ModuleType):
    def __call__(self, *args, **kwargs):
        """``train.finetune(*args, **kwargs)``: a generator of ``ProgressEvent``s returning a
        ``FinetuneResult``."""
        return finetune(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallablePackage
