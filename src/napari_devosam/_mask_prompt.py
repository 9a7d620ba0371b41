"""A mask prompt's 16-channel features for the fast SAM decoder (private).

``PromptEncoder.mask_downscaling`` is conv(2x2, stride 2) -> LayerNorm2d -> GELU, twice, then a
1x1 conv to 256 channels. Strided 2x2 convolutions are matmuls on non-overlapping patches, and
LayerNorm2d is a LayerNorm over channels, so on channels-last pixels the first six modules are
two (matmul, layer_norm, gelu) steps: 6 native ops instead of ~20 with (B, C, H, W) temporaries.
The last 1x1 conv is folded into the decoder's weights (``_decoder_kernels.DecoderWeights``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _patch_conv(x: torch.Tensor, conv, b: int, h: int, w: int) -> torch.Tensor:
    """Channels-last pixels x (b*h*w, c) -> conv(2x2, stride 2) -> (b*(h/2)*(w/2), out)."""
    c = x.shape[-1]
    patches = x.view(b, h // 2, 2, w // 2, 2, c).permute(0, 1, 3, 2, 4, 5)
    patches = patches.reshape(-1, 4 * c)  # columns (dy, dx, c)
    weight = conv.weight.permute(0, 2, 3, 1).reshape(conv.out_channels, 4 * c)
    return torch.addmm(conv.bias, patches, weight.t())


def _norm_act(x: torch.Tensor, norm, act) -> torch.Tensor:
    x = F.layer_norm(x, (x.shape[-1],), norm.weight, norm.bias, norm.eps)
    return F.gelu(x, approximate=getattr(act, "approximate", "none"))


def mask_features(prompt_encoder, mask_input: torch.Tensor) -> torch.Tensor:
    """(B, 1, 4h, 4w) low-res logits -> (B, h*w, 16): ``mask_downscaling[:-1]``, channels last.

    Equal (to float rounding) to ``mask_downscaling[:-1](mask_input).flatten(2).transpose(1, 2)``.
    """
    md = prompt_encoder.mask_downscaling
    b, _, hh, ww = mask_input.shape
    x = _patch_conv(mask_input.reshape(-1, 1), md[0], b, hh, ww)
    x = _norm_act(x, md[1], md[2])
    x = _patch_conv(x, md[3], b, hh // 2, ww // 2)
    x = _norm_act(x, md[4], md[5])
    return x.view(b, (hh // 4) * (ww // 4), -1)
