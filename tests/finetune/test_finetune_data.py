"""Fine-tuning data: folders of images/ + labels/, every bad case rejected naming the file."""

from __future__ import annotations

import numpy as np
import pytest

import phantom_pairs
from napari_devosam.finetune.data import load_planes, split_planes, summarize
from napari_devosam.io.write import write_tiff
from napari_devosam.synthetic.phantoms import make_embryo


def write_pairs(root, n=3, shape=(64, 64), n_cells=4):
    return phantom_pairs.write_pairs(root, n, shape=shape, n_cells=n_cells)


def test_reads_pairs_with_their_objects(tmp_path):
    planes = load_planes(write_pairs(tmp_path / "data"))
    assert [p.name for p in planes] == [f"data/plane{i}.tif" for i in range(3)]
    for p in planes:
        assert p.labels.dtype == np.int64 and p.labels.shape == p.image.shape == (64, 64)
        assert set(p.object_ids) <= set(np.unique(p.labels)) - {0}
        assert len(p.object_ids) >= 3
    assert summarize(planes)["planes"] == 3


def test_png_pairs_and_several_folders(tmp_path):
    from skimage import io as skio

    write_pairs(tmp_path / "a", n=1)
    b = tmp_path / "b"
    (b / "images").mkdir(parents=True)
    (b / "labels").mkdir()
    image, labels = make_embryo(shape=(64, 64), n_cells=4, seed=5, dtype=np.uint8)
    skio.imsave(b / "images" / "x.png", image, check_contrast=False)
    skio.imsave(b / "labels" / "x.png", labels.astype(np.uint8), check_contrast=False)
    planes = load_planes([tmp_path / "a", b])
    assert [p.name for p in planes] == ["a/plane0.tif", "b/x.png"]


def test_stack_is_split_into_planes_skipping_empty_ones(tmp_path):
    root = tmp_path / "s"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    image, labels = make_embryo(shape=(64, 64), n_cells=4, seed=1)
    stack = np.stack([image, image])
    lab = np.stack([np.zeros_like(labels), labels])
    write_tiff(root / "images" / "t.tif", stack)
    write_tiff(root / "labels" / "t.tif", lab.astype(np.uint16))
    planes = load_planes(root)
    assert [p.name for p in planes] == ["s/t.tif[1]"]


def test_missing_folder_and_missing_subfolder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        load_planes(tmp_path / "nope")
    (tmp_path / "only" / "images").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="labels"):
        load_planes(tmp_path / "only")


def test_no_files(tmp_path):
    for sub in ("images", "labels"):
        (tmp_path / "empty" / sub).mkdir(parents=True)
    with pytest.raises(ValueError, match="no .*images"):
        load_planes(tmp_path / "empty")


def test_unmatched_names(tmp_path):
    root = write_pairs(tmp_path / "d", n=2)
    (root / "labels" / "plane1.tif").rename(root / "labels" / "other.tif")
    with pytest.raises(ValueError, match="plane1.tif"):
        load_planes(root)


def test_shape_mismatch_names_the_label_file(tmp_path):
    root = write_pairs(tmp_path / "d", n=2)
    _, labels = make_embryo(shape=(80, 64), n_cells=4, seed=0)
    write_tiff(root / "labels" / "plane1.tif", labels.astype(np.uint16))
    with pytest.raises(ValueError, match=r"labels.plane1\.tif.*shape"):
        load_planes(root)


def test_no_objects_names_the_label_file(tmp_path):
    root = write_pairs(tmp_path / "d", n=2)
    write_tiff(root / "labels" / "plane0.tif", np.zeros((64, 64), np.uint16))
    with pytest.raises(ValueError, match=r"plane0\.tif has no objects"):
        load_planes(root)


def test_float_labels_with_fractions_are_refused(tmp_path):
    root = write_pairs(tmp_path / "d", n=1)
    write_tiff(root / "labels" / "plane0.tif", np.full((64, 64), 0.5, np.float32))
    with pytest.raises(ValueError, match="plane0.tif has non-integer"):
        load_planes(root)


def test_split_keeps_files_together_and_is_seeded(tmp_path):
    planes = load_planes(write_pairs(tmp_path / "d", n=5))
    train, val = split_planes(planes, 0.4, seed=3)
    assert len(val) == 2 and len(train) == 3
    assert not {p.source for p in train} & {p.source for p in val}
    assert [p.name for p in split_planes(planes, 0.4, seed=3)[1]] == [p.name for p in val]
    assert split_planes(planes, 0.0)[1] == []
    assert split_planes(planes[:1], 0.5)[1] == []
    with pytest.raises(ValueError, match="val_fraction"):
        split_planes(planes, 1.0)
