import csv
import json

import numpy as np
import pytest
import tifffile

from napari_devosam.annotation.store import AnnotationStore
from napari_devosam.cli import main
from napari_devosam.engine.image import Normalization
from napari_devosam.export import bundle as export_mod
from napari_devosam.export.bundle import (
    export_bundle,
    export_store,
    find_pairs,
    iter_pairs,
    load_bundle,
    write_bundle,
)
from napari_devosam.export.coco import labels_from_coco, rle_decode
from napari_devosam.synthetic.phantoms import make_timelapse


@pytest.fixture(scope="module")
def movie():
    stack, labels = make_timelapse(3, (64, 80), n_cells=3, seed=1)
    labels = labels.astype(np.uint32)
    labels[1] = 0  # plane 1 has no objects
    return stack, labels


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_round_trip_is_exact(tmp_path, movie):
    stack, labels = movie
    prompts = {1: {"box": np.array([1, 2, 30, 40])}, 2: {"points": [[5, 6]], "point_labels": [1]}}
    gen = export_bundle(tmp_path / "b", stack, labels, source="/data/embryo.tif",
                        prompts=prompts, normalization=Normalization(1, 99),
                        model_info={"name": "vit_b", "hash": "abc"})
    progress = []
    while True:
        try:
            progress.append(next(gen))
        except StopIteration as stop:
            summary = stop.value
            break
    assert progress[-1][0] == progress[-1][1] == len(progress)
    assert summary["files"] == ["embryo_0000.tif", "embryo_0002.tif"]
    assert summary["objects"] == int(labels[0].max() + labels[2].max())

    pairs = find_pairs(tmp_path / "b")
    assert [p[0].name for p in pairs] == summary["files"]
    for (img, lab, _path), t in zip(iter_pairs(tmp_path / "b"), (0, 2), strict=True):
        assert img.dtype == stack.dtype and lab.dtype == np.uint16
        np.testing.assert_array_equal(img, stack[t])
        np.testing.assert_array_equal(lab, labels[t])

    manifest = load_bundle(tmp_path / "b")
    assert manifest["format"] == "devosam-bundle" and manifest["object_count"] == summary["objects"]
    entry = manifest["entries"][0]
    assert entry["source"] == "/data/embryo.tif" and entry["plane"] == [0]
    assert entry["prompts"]["1"] == {"box": [1, 2, 30, 40]}
    assert entry["model"]["hash"] == "abc" and entry["normalization"]["low"] == 1
    assert manifest["package_version"]

    coco = json.loads((tmp_path / "b" / "annotations.json").read_text())
    for t, image in zip((0, 2), coco["images"], strict=True):
        np.testing.assert_array_equal(labels_from_coco(coco, image["file_name"]), labels[t])
    assert isinstance(coco["annotations"][0]["segmentation"]["counts"], str)
    first = coco["annotations"][0]
    np.testing.assert_array_equal(rle_decode(first["segmentation"]), labels[0] == first["label"])


def test_measurements_have_one_row_per_object(tmp_path, movie):
    stack, labels = movie
    write_bundle(tmp_path / "b", stack, labels, source="e.tif")
    rows = list(csv.DictReader((tmp_path / "b" / "measurements.csv").open()))
    assert len(rows) == labels[0].max() + labels[2].max()
    row = rows[0]
    mask = labels[0] == int(row["label"])
    assert row["file"] == "e_0000.tif" and row["plane"] == "0"
    assert int(row["area"]) == mask.sum()
    assert float(row["mean_intensity"]) == pytest.approx(stack[0][mask].mean())
    rr, cc = np.nonzero(mask)
    assert float(row["centroid_row"]) == pytest.approx(rr.mean())
    assert int(row["bbox_col1"]) == cc.max() + 1
    assert 0 <= float(row["eccentricity"]) < 1


def test_re_export_adds_and_updates_without_losing(tmp_path, movie):
    stack, labels = movie
    write_bundle(tmp_path / "b", stack, labels, source="a.tif", plane_indices=[(0,)])
    write_bundle(tmp_path / "b", stack, labels, source="other/a.tif")  # same stem, other source
    changed = labels.copy()
    changed[0][changed[0] == 1] = 0
    summary = write_bundle(tmp_path / "b", stack, changed, source="a.tif", plane_indices=[0])
    assert summary["files"] == ["a_0000.tif"]
    manifest = load_bundle(tmp_path / "b")
    files = sorted(e["file"] for e in manifest["entries"])
    assert len(files) == 3 and "a_0000.tif" in files
    assert sum(1 for f in files if f.startswith("a_0000_")) == 1  # the other source's file
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "b/labels/a_0000.tif"), changed[0])
    assert manifest["object_count"] == 2 * labels[0].max() - 1 + labels[2].max()
    rows = list(csv.DictReader((tmp_path / "b" / "measurements.csv").open()))
    assert len(rows) == manifest["object_count"]
    coco = json.loads((tmp_path / "b" / "annotations.json").read_text())
    assert len(coco["annotations"]) == manifest["object_count"]
    assert not [p for p in (tmp_path / "b").iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("where", ["tiff", "csv"])
def test_a_failure_leaves_the_previous_bundle_intact(tmp_path, movie, monkeypatch, where):
    stack, labels = movie
    write_bundle(tmp_path / "b", stack, labels, source="a.tif", plane_indices=[0])
    before = _snapshot(tmp_path / "b")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    if where == "tiff":
        calls = []
        real = export_mod.write_tiff

        def fail_second(*args, **kwargs):
            calls.append(1)
            if len(calls) > 3:
                raise OSError("disk full")
            return real(*args, **kwargs)

        monkeypatch.setattr(export_mod, "write_tiff", fail_second)
    else:
        monkeypatch.setattr(export_mod, "rows_to_csv", boom)
    changed = labels.copy()
    changed[0] = 0
    changed[0, :5, :5] = 9
    with pytest.raises(OSError, match="disk full"):
        write_bundle(tmp_path / "b", stack, changed, source="a.tif")
    assert _snapshot(tmp_path / "b") == before


def test_cancelling_leaves_the_bundle_untouched(tmp_path, movie):
    stack, labels = movie
    gen = export_bundle(tmp_path / "b", stack, labels, source="a.tif")
    next(gen)
    gen.close()
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())


def test_export_from_a_store(tmp_path, movie):
    stack, labels = movie
    store = AnnotationStore.for_image(None, stack, project_dir=tmp_path / "p")
    ids = store.commit((2,), [labels[2] == 1, labels[2] == 2],
                       [{"box": [0, 0, 9, 9]}, {"box": [1, 1, 8, 8]}], info={"model": "vit_b"})
    summary = write_bundle(tmp_path / "b", stack, labels=store.labels, source="s.tif")
    assert summary["objects"] == 2
    gen = export_store(tmp_path / "c", store, stack, source="s.tif")
    for _ in gen:
        pass
    entry = load_bundle(tmp_path / "c")["entries"][0]
    assert entry["plane"] == [2] and entry["object_ids"] == ids
    assert entry["prompts"][str(ids[1])] == {"box": [1, 1, 8, 8]}
    assert entry["model"] == "vit_b"
    with pytest.raises(ValueError, match="other pixel data"):
        next(export_store(tmp_path / "d", store, stack + 1))


def test_bad_input(tmp_path, movie):
    stack, labels = movie
    with pytest.raises(ValueError, match="shape"):
        write_bundle(tmp_path / "b", stack, labels[:2], source="a")
    with pytest.raises(ValueError, match="nothing to export"):
        write_bundle(tmp_path / "b", stack, np.zeros_like(labels), source="a")
    with pytest.raises(ValueError, match="does not fit labels"):
        write_bundle(tmp_path / "b", stack, labels, source="a", plane_indices=[7])
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        write_bundle(tmp_path / "x", stack, labels, source="a")
    with pytest.raises(FileNotFoundError):
        load_bundle(tmp_path / "x")


def test_find_pairs_on_a_plain_folder(tmp_path):
    for sub in ("images", "labels"):
        (tmp_path / sub).mkdir()
    tifffile.imwrite(tmp_path / "images" / "a.tif", np.zeros((4, 4), np.uint16))
    tifffile.imwrite(tmp_path / "labels" / "a.tiff", np.ones((4, 4), np.uint16))
    assert [(i.name, lab.name) for i, lab in find_pairs(tmp_path)] == [("a.tif", "a.tiff")]
    tifffile.imwrite(tmp_path / "images" / "b.tif", np.zeros((4, 4), np.uint16))
    with pytest.raises(ValueError, match="b.tif"):
        find_pairs(tmp_path)
    tifffile.imwrite(tmp_path / "labels" / "b.tif", np.ones((5, 4), np.uint16))
    with pytest.raises(ValueError, match="b.tif"):
        list(iter_pairs(tmp_path))
    with pytest.raises(FileNotFoundError, match="images"):
        find_pairs(tmp_path / "images")


def test_cli_export(tmp_path, movie, capsys):
    stack, labels = movie
    tifffile.imwrite(tmp_path / "e.tif", stack)
    tifffile.imwrite(tmp_path / "l.tif", labels)
    assert main(["export", str(tmp_path / "e.tif"), "--labels", str(tmp_path / "l.tif"),
                 "--out", str(tmp_path / "b"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["files"] == ["e_0000.tif", "e_0002.tif"]
    store = AnnotationStore.for_image(tmp_path / "e.tif", stack)
    store.commit((1,), [labels[0] == 1])
    assert main(["export", str(tmp_path / "e.tif"), "--out", str(tmp_path / "b")]) == 0
    assert load_bundle(tmp_path / "b")["file_count"] == 3
    capsys.readouterr()
    assert main(["export", str(tmp_path / "missing.tif"), "--out", str(tmp_path / "c")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("devosam export: error:")
