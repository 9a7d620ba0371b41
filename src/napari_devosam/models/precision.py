"""The numeric precision a model's image encoder runs in: "fp32" (default) or "bf16".

bf16 runs the encoder under ``torch.autocast`` with bfloat16: matrix products and attention in
bf16, softmax and layer norms in fp32 (PyTorch's autocast op lists), features returned as fp32.
On CPUs with AMX or AVX512-BF16 (Intel Sapphire Rapids and later, AMD Zen 4 and later) this is
about 3x faster for vit_b than fp32 (docs/benchmarks.md); on CUDA cards with bf16 support
(Ampere and later) it halves memory and is faster too. Masks stay within IoU 0.98 of fp32's
for the same prompts (tests/models/test_precision.py, benchmarks/bench_precision.py). Only
the encoder is affected: prompt encoder and mask decoder stay fp32, so fine-tuning and decoding
are unchanged.

int8 dynamic quantisation of the encoder's linear layers is not offered: PyTorch deprecates
its eager-mode API (``torch.ao.quantization.quantize_dynamic``, moving to torchao), and on
this project's CPU it gave 1.4x at 5 % relative feature error against bf16's 3x at 1 %.

"auto" (or ``None``) means ``DEVOSAM_PRECISION`` if set, else "fp32": bf16 is opt-in, because
its embeddings differ slightly from fp32's (they are cached under their own keys).
"""

from __future__ import annotations

import contextlib
import os

import torch

PRECISIONS = ("fp32", "bf16")
PRECISION_ENV = "DEVOSAM_PRECISION"
_ATTRIBUTE = "_devosam_encoder_precision"


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bf16 matrix products in hardware (AMX or AVX512-BF16)."""
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    for check in checks:
        try:
            if getattr(cpu, check)():
                return True
        except (AttributeError, RuntimeError):
            continue
    return False


def resolve_precision(precision: str | None = "auto") -> str:
    """``"fp32"`` or ``"bf16"`` for ``precision`` ("auto"/None: ``DEVOSAM_PRECISION`` or fp32).

    Raises ``ValueError`` for any other value, naming the accepted ones.
    """
    value = "auto" if precision is None else str(precision).strip().lower()
    source = ""
    if value == "auto":
        value = os.environ.get(PRECISION_ENV, "").strip().lower() or "auto"
        source = f" (from {PRECISION_ENV})"
    if value == "auto":
        return "fp32"
    if value not in PRECISIONS:
        raise ValueError(f"unknown precision {value!r}{source}: use auto, "
                         f"{', '.join(PRECISIONS)}")
    return value


def check_supported(precision: str, device: torch.device) -> str | None:
    """Why ``precision`` is a poor choice on ``device`` (a sentence), or None when it is fine.

    Raises ``ValueError`` when it cannot run there at all (bf16 on a CUDA card without it).
    """
    if precision == "fp32":
        return None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"bf16 encoder precision runs on CPUs and CUDA cards, not on "
                         f"{device.type}; use fp32 there")
    if device.type == "cuda":
        if not torch.cuda.is_bf16_supported():
            raise ValueError(f"bf16 is not supported on {torch.cuda.get_device_name(device)}; "
                             "use --precision fp32")
        return None
    if device.type == "cpu" and not cpu_has_fast_bf16():
        return ("this CPU has no bf16 hardware (AMX or AVX512-BF16): bf16 runs emulated and is "
                "likely slower than fp32")
    return None


def set_precision(sam, precision: str | None = "auto") -> str:
    """Make ``sam``'s image encoder run in ``precision`` from now on; returns the resolved name."""
    value = resolve_precision(precision)
    setattr(sam, _ATTRIBUTE, value)
    return value


def precision_of(sam) -> str:
    """The precision ``sam``'s encoder runs in ("fp32" unless ``set_precision`` said otherwise)."""
    return getattr(sam, _ATTRIBUTE, "fp32")


def encoder_autocast(sam, device: torch.device):
    """A context manager running the encoder in ``sam``'s precision on ``device``."""
    if precision_of(sam) == "fp32" or device.type not in ("cpu", "cuda"):  # see check_supported
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)
