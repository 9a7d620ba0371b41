"""Fine-tuning SAM's mask decoder on annotated planes, and measuring decoders.

``finetune`` is a generator of ``ProgressEvent``s returning a ``FinetuneResult``;
``run_finetune`` drains it. ``evaluate`` scores a model's box- and point-prompted masks on
annotated data. See docs/finetune.md.

Importing this package costs nothing: its names are resolved on first use (``__getattr__``),
so the fine-tune widget can read ``finetune.settings.RunSettings`` without loading torch;
``finetune``, ``evaluate`` and the data functions load torch.

The package is also the top-level face ``napari_devosam.finetune``: Python binds a subpackage
to its parent's attribute of the same name, so the package itself is callable, and
``napari_devosam.finetune(data_dirs, sam, out=...)`` is ``finetune.train.finetune(...)``.
"""

import importlib as _importlib
import sys as _sys
from types import ModuleType as _ModuleType

_HOMES = {
    "TrainingPlane": "data", "load_planes": "data", "split_planes": "data",
    "evaluate": "evaluate", "iter_evaluate": "evaluate",
    "FinetuneResult": "events", "ProgressEvent": "events", "TrainingDiverged": "events",
    "finetune": "train", "run_finetune": "train",
    "RunSettings": "settings",
}

__all__ = [
    "FinetuneResult",
    "RunSettings",
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


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


class _CallablePackage(_ModuleType):
    def __setattr__(self, name, value):
        # importing the submodule ``evaluate`` binds it here: keep the function of that name
        if name == "evaluate" and isinstance(value, _ModuleType):
            value = value.evaluate
        super().__setattr__(name, value)

    def __call__(self, *args, **kwargs):
        """``train.finetune(*args, **kwargs)``: a generator of ``ProgressEvent``s returning a
        ``FinetuneResult``."""
        from napari_devosam.finetune.train import finetune

        return finetune(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallablePackage
