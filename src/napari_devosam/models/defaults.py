"""The one rule for which model is used when none is named, by every command and panel.

1. ``DEVOSAM_CHECKPOINT`` names a file: that file (managed and offline installs).
2. Else the best official checkpoint already in the cache, microscopy-trained first:
   ``PREFERENCE`` = vit_l_lm > vit_b_lm > vit_h > vit_l > vit_b. Nothing is downloaded by
   default: a checkpoint counts only if ``download.is_cached`` says it is there.
3. Else the bundled model: ``embryo`` once that name is registered, else ``embryo_tiny``
   (``registry.recommended_bundled``). It works offline, from the first start.

``default_model()`` says which and why; the CLI prints ``describe()`` on stderr, the GUI shows
it in the model panel. No torch here, and no network.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from napari_devosam.models.download import CHECKPOINT_ENV, is_cached
from napari_devosam.models.registry import CHECKPOINTS, recommended_bundled

PREFERENCE: tuple[str, ...] = ("vit_l_lm", "vit_b_lm", "vit_h", "vit_l", "vit_b")


@dataclass(frozen=True)
class DefaultModel:
    """The model used when none is named: ``model`` (a registry name, or a checkpoint path
    from ``DEVOSAM_CHECKPOINT``), ``source`` ("env", "cached" or "bundled") and ``reason``
    (a few words for users)."""

    model: str
    source: str
    reason: str

    def describe(self) -> str:
        """One line for users, e.g. ``model: embryo_tiny (bundled; no official checkpoint
        cached)``."""
        return f"model: {self.model} ({self.reason})"


def default_model() -> DefaultModel:
    """The model to use when none is named, by the rule in this module's docstring."""
    env = os.environ.get(CHECKPOINT_ENV, "").strip()
    if env:
        return DefaultModel(env, "env", f"from ${CHECKPOINT_ENV}")
    for name in PREFERENCE:
        if name in CHECKPOINTS and is_cached(name):
            kind = "microscopy-trained, " if CHECKPOINTS[name].arch != name else ""
            return DefaultModel(name, "cached", f"official {kind}cached")
    return DefaultModel(recommended_bundled(), "bundled", "bundled; no official checkpoint cached")


def resolve_model(model) -> tuple[object, DefaultModel | None]:
    """``(model, None)`` for a named model or path; ``(default, rule)`` when ``model`` is None
    or empty, ``rule`` being the ``DefaultModel`` that chose it."""
    if model is None or (isinstance(model, str) and not model.strip()):
        rule = default_model()
        return rule.model, rule
    return model, None
