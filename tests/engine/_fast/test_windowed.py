"""engine._fast.windowed: per-window crops of per-token tensors equal plain slicing."""

import torch

from napari_devosam.engine._fast.windowed import crop_tokens


def test_crops_equal_slices_of_the_grid():
    grid = (6, 5)
    t = torch.arange(2 * 30 * 3, dtype=torch.float32).reshape(2, 30, 3)  # (heads, h*w, d)
    windows = [(0, 0, 3), (3, 2, 3), (1, 1, 3)]
    out = crop_tokens(t, grid, windows, 3)
    assert out.shape == (3, 2, 9, 3) and out.is_contiguous()
    image = t.unflatten(1, grid)
    for b, (r, c, s) in enumerate(windows):
        assert torch.equal(out[b], image[:, r:r + s, c:c + s].flatten(1, 2))
    flat = torch.arange(30.0)[:, None]  # (h*w, d) tensors crop the same way
    assert torch.equal(crop_tokens(flat, grid, windows, 3)[1, :, 0],
                       image[0, 3:6, 2:5, 0].flatten() / 3)
