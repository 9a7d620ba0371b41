"""Randomly initialised SAM models for tests and benchmarks (no weights are downloaded).

``tiny_sam`` is small enough that a whole test suite runs in seconds on a CPU; ``random_sam``
builds the real vit_b/l/h architecture with random weights for parity and speed checks.
"""

from __future__ import annotations

from functools import partial


def tiny_sam(seed: int = 0, img_size: int = 256, embed_dim: int = 32):
    """A SAM with the real module classes but tiny sizes, in eval mode on the CPU.

    The image encoder is a 1-block ViT of width ``embed_dim``; the embedding is
    (256, img_size/16, img_size/16) and the low-res mask logits are 4x that grid.
    """
    import torch
    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    torch.manual_seed(seed)
    grid = img_size // 16
    sam = Sam(
        image_encoder=ImageEncoderViT(
            img_size=img_size,
            patch_size=16,
            embed_dim=embed_dim,
            depth=1,
            num_heads=2,
            mlp_ratio=2,
            out_chans=256,
            qkv_bias=True,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            use_rel_pos=True,
            window_size=0,
            global_attn_indexes=(0,),
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=256,
            image_embedding_size=(grid, grid),
            input_image_size=(img_size, img_size),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=1, embedding_dim=256, mlp_dim=256, num_heads=8),
            transformer_dim=256,
            iou_head_depth=3,
            iou_head_hidden_dim=64,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    return sam.eval()


def random_sam(arch: str = "vit_b", seed: int = 0):
    """The real ``arch`` architecture ("vit_b", "vit_l", "vit_h") with random weights, eval mode."""
    import torch
    from segment_anything import sam_model_registry

    torch.manual_seed(seed)
    return sam_model_registry[arch](checkpoint=None).eval()
