"""One rule for channel and singleton axes, the same in the API, the CLI and the GUI."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from skimage import io as skio

from napari_devosam.cli import main
from napari_devosam.engine.image import to_rgb
from napari_devosam.engine.predictor import Predictor
from napari_devosam.engine.stacks import as_plane, canonical_axes, plane_count
from napari_devosam.io.read import read_image
from napari_devosam.testing import tiny_sam

rng = np.random.default_rng(5)
GRAY = (rng.random((64, 80)) * 200 + 20).astype(np.uint8)
FORMS = {
    "lone channel": GRAY[..., None],
    "gray + alpha": np.stack([GRAY, np.full_like(GRAY, 255)], axis=-1),
    "leading singleton": GRAY[None],
}


@pytest.mark.parametrize("form", FORMS)
def test_api_reads_each_form_as_one_gray_plane(form):
    data = FORMS[form]
    np.testing.assert_array_equal(as_plane(data), GRAY)
    np.testing.assert_array_equal(to_rgb(data), to_rgb(GRAY))
    predictor = Predictor(tiny_sam())
    predictor.set_image(data)
    assert predictor.original_size == GRAY.shape


def test_stacks_keep_their_planes_and_drop_channel_axes():
    stack = np.stack([GRAY, GRAY])
    assert plane_count(canonical_axes(stack[..., None])) == 2
    assert plane_count(canonical_axes(stack)) == 2
    assert canonical_axes(np.zeros((5, 64, 80, 3))).shape == (5, 64, 80, 3)
    with pytest.raises(ValueError, match="got 2 planes"):
        as_plane(stack)


@pytest.mark.parametrize("suffix, form", [(".tif", "lone channel"), (".png", "gray + alpha"),
                                          (".tif", "gray + alpha")])
def test_files_read_as_one_plane(tmp_path, suffix, form):
    path = tmp_path / f"img{suffix}"
    if suffix == ".png":
        skio.imsave(path, FORMS[form], check_contrast=False)
    else:
        tifffile.imwrite(path, FORMS[form])
    data = read_image(path)
    assert data.shape == GRAY.shape
    np.testing.assert_array_equal(data, GRAY)


def test_cli_segments_a_gray_alpha_png_as_one_plane(tmp_path, monkeypatch, capsys):
    import napari_devosam.models.loading as loading

    monkeypatch.setattr(loading, "load_model", lambda *a, **k: tiny_sam())
    path = tmp_path / "img.png"
    skio.imsave(path, FORMS["gray + alpha"], check_contrast=False)
    out = tmp_path / "labels.tif"
    assert main(["segment", str(path), "--box", "10,10,40,50", "--out", str(out)]) == 0
    assert tifffile.imread(out).shape == GRAY.shape
