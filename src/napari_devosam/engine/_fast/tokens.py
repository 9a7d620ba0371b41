"""SAM's prompt tokens, and the stock decoder on them with gradients (fine-tuning's reference).

``decode`` equals ``sam.prompt_encoder`` followed by ``sam.mask_decoder.predict_masks``
(see tests/finetune/test_finetune_decoding.py), but every prompt of the batch is a token list
in one tensor: points carry labels 1 (positive) / 0 (negative) / -1 (padding, "not a point"), and a
box is its two corners with labels 2 (top-left) and 3 (bottom-right), after the points as
in ``SamPredictor``. The image embedding ``(1, 256, h, w)`` is expanded over the batch inside
the decoder, so one image serves B prompts per forward pass. ``trainable.decode_fast`` is the
same with a fraction of the work. Callers outside ``engine`` use ``engine.decoding``
(``decode_tokens``, ``decode_tokens_fast``, ``Prompts``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

PAD, NEG, POS, BOX_TL, BOX_BR = -1, 0, 1, 2, 3


@dataclass
class Prompts:
    """A batch of B prompts on one image, input-frame coordinates.

    Attributes:
      coords: ``(B, N, 2)`` float32 ``(x, y)`` tokens.
      labels: ``(B, N)`` int64 token labels (PAD/NEG/POS/BOX_TL/BOX_BR).
      multimask: use the three ambiguity outputs (single-point prompts) instead of the single
        mask output.
    """

    coords: torch.Tensor
    labels: torch.Tensor
    multimask: bool = False

    @property
    def batch(self) -> int:
        return int(self.coords.shape[0])


def sparse_embeddings(prompt_encoder, coords: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``(B, N, 256)`` token embeddings, as ``PromptEncoder._embed_points`` / ``_embed_boxes``."""
    pe = prompt_encoder.pe_layer.forward_with_coords(coords + 0.5, prompt_encoder.input_image_size)
    pad = (labels == PAD)[..., None]
    pe = torch.where(pad, torch.zeros((), dtype=pe.dtype, device=pe.device), pe)
    table = torch.cat(
        [prompt_encoder.not_a_point_embed.weight]
        + [emb.weight for emb in prompt_encoder.point_embeddings],
        dim=0,
    )
    return pe + table[labels + 1]


def dense_embeddings(prompt_encoder, batch: int, mask_input: torch.Tensor | None) -> torch.Tensor:
    """``(B, 256, h, w)``: the mask prompt's embedding, or ``no_mask_embed`` without one."""
    if mask_input is not None:
        return prompt_encoder.mask_downscaling(mask_input)
    h, w = prompt_encoder.image_embedding_size
    return prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(batch, -1, h, w)


def decode(sam, features: torch.Tensor, prompts: Prompts, mask_input: torch.Tensor | None = None,
           dense_pe: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Low-res logits ``(B, C, 4h, 4w)`` and predicted IoU ``(B, C)`` for ``prompts``.

    ``features`` ``(1, 256, h, w)``; ``mask_input`` ``(B, 1, 4h, 4w)`` logits of a previous round
    or None. C = 3 (ambiguity outputs) when ``prompts.multimask`` else 1, as in ``MaskDecoder``.
    ``dense_pe`` (``prompt_encoder.get_dense_pe()``) may be passed to avoid recomputing it.
    """
    pe = sam.prompt_encoder
    sparse = sparse_embeddings(pe, prompts.coords, prompts.labels)
    dense = dense_embeddings(pe, prompts.batch, mask_input)
    if dense_pe is None:
        dense_pe = pe.get_dense_pe()
    masks, iou = sam.mask_decoder.predict_masks(
        image_embeddings=features,
        image_pe=dense_pe,
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
    )
    sl = slice(1, None) if prompts.multimask else slice(0, 1)
    return masks[:, sl], iou[:, sl]
