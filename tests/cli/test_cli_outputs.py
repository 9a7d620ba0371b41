"""Bad outputs and inputs fail at once, in the user's terms, before any compute."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from napari_devosam.cli import main
from napari_devosam.io.write import write_tiff


@pytest.fixture
def image(tmp_path, monkeypatch):
    import napari_devosam.models.loading as loading

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the output was checked")

    monkeypatch.setattr(loading, "load_model", no_model)
    path = tmp_path / "p.tif"
    tifffile.imwrite(path, np.zeros((32, 40), np.uint16))
    return path


@pytest.mark.parametrize("out, message", [
    ("folder", "is a folder; give a file name"),
    ("labels.png", "name the file with .tif or .tiff"),
    ("locked/labels.tif", "cannot write in"),
])
def test_segment_checks_out_before_compute(tmp_path, image, capsys, out, message):
    (tmp_path / "folder").mkdir()
    (tmp_path / "locked").mkdir(mode=0o500)
    if os.geteuid() == 0 and out.startswith("locked"):
        pytest.skip("root can write into any folder")
    code = main(["segment", str(image), "--box", "1,1,20,20", "--out", str(tmp_path / out)])
    err = capsys.readouterr().err
    assert code == 1 and message in err and err.count("\n") == 1


def test_write_tiff_refuses_other_suffixes(tmp_path):
    with pytest.raises(ValueError, match="name the file with .tif"):
        write_tiff(tmp_path / "x.png", np.zeros((4, 4), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_annotate_refuses_a_non_image_before_opening_napari(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}  # napari could not start
    run = subprocess.run([sys.executable, "-m", "napari_devosam", "annotate", str(notes)],
                         capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        line for line in run.stderr.strip().splitlines() if "cannot read" in line]


def test_annotate_refuses_a_series_without_images_before_opening_napari(tmp_path):
    (tmp_path / "empty").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}  # napari could not start
    run = subprocess.run([sys.executable, "-m", "napari_devosam", "annotate",
                          str(tmp_path / "empty")], capture_output=True, text=True, timeout=120,
                         env=env)
    assert run.returncode == 1
    assert [line for line in run.stderr.strip().splitlines() if "error" in line] == [
        f"devosam annotate: error: no image in folder {tmp_path / 'empty'} (looked for .tif, "
        ".tiff, .png, .jpg, .jpeg, .czi, .nd2, .lif)"]


@pytest.mark.parametrize("command", ["finetune", "eval"])
def test_an_image_file_instead_of_a_bundle_says_what_to_do(tmp_path, image, capsys, command):
    extra = ["--out", str(tmp_path / "d.safetensors")] if command == "finetune" else []
    assert main([command, str(image), *extra]) == 1
    err = capsys.readouterr().err
    assert "is a file" in err and "devosam export" in err and "does not exist" not in err


@pytest.mark.parametrize("command", ["export", "track"])
def test_folder_outputs_that_are_files_fail_first(tmp_path, image, capsys, command):
    taken = tmp_path / "taken"
    taken.write_text("a file")
    args = {"export": ["export", str(image), "--labels", str(image)],
            "track": ["track", str(image), "--seed-labels", str(image)]}[command]
    assert main([*args, "--out", str(taken)]) == 1
    assert "is a file; the" in capsys.readouterr().err


@pytest.mark.parametrize("prompt", [["--box", "1,1,20,20"], ["--auto"]])
@pytest.mark.parametrize("spelling", ["same", "symlink", "relative"])
def test_segment_never_writes_over_its_input(tmp_path, image, capsys, monkeypatch, prompt,
                                             spelling):
    before = image.read_bytes()
    out = image
    if spelling == "symlink":
        out = tmp_path / "link.tif"
        out.symlink_to(image)
    elif spelling == "relative":
        monkeypatch.chdir(tmp_path)
        out = f"./sub/../{image.name}"
        (tmp_path / "sub").mkdir()
    code = main(["segment", str(image), *prompt, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "is also an input" in err and err.count("\n") == 1
    assert image.read_bytes() == before


def test_track_never_writes_over_its_inputs(tmp_path, capsys, monkeypatch):
    import napari_devosam.models.loading as loading

    monkeypatch.setattr(loading, "load_model", lambda *a, **k: pytest.fail("model loaded"))
    stack = tmp_path / "mask000.tif"  # a name a CTC result folder gets
    tifffile.imwrite(stack, np.zeros((3, 32, 40), np.uint16))
    seeds = tmp_path / "tracks.csv.tif"
    tifffile.imwrite(seeds, np.ones((32, 40), np.uint16))
    before = stack.read_bytes()
    code = main(["track", str(stack), "--seed-labels", str(seeds), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and "mask000.tif lies in" in err and err.count("\n") == 1
    assert stack.read_bytes() == before
    other = tmp_path / "movie.tif"  # a name the result does not use: the folder is fine
    stack.rename(other)
    from napari_devosam.tracking.track_files import writes_name

    assert not writes_name(other.name) and writes_name("mask0123.tif")
    assert writes_name("res_track.txt") and not writes_name("mask_a.tif")


@pytest.mark.parametrize("argv, message", [
    (["segment", "x.tif", "--auto", "--mode", "nope", "--out", "y.tif"], "'seeded', 'grid'"),
    (["track"], "required: stack, --out"),
    (["bogus"], "invalid choice: 'bogus'"),
])
def test_usage_errors_are_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and message in err and err.count("\n") == 1


def test_bad_min_area_and_a_text_file_as_image(tmp_path, image, capsys):
    assert main(["segment", str(image), "--auto", "--min-area", "-5",
                 "--out", str(tmp_path / "o.tif")]) == 1
    assert "--min-area must be >= 0" in capsys.readouterr().err
    text = tmp_path / "notes.tif"
    text.write_text("hello")
    assert main(["segment", str(text), "--auto", "--out", str(tmp_path / "o.tif")]) == 1
    err = capsys.readouterr().err
    assert "not a readable TIFF file" in err and err.count("\n") == 1


def test_embed_checks_its_cache_folder_before_compute(tmp_path, image, capsys):
    before = image.read_bytes()
    code = main(["embed", str(image), "--cache-dir", str(image)])  # the image, not a folder
    err = capsys.readouterr().err
    assert code == 1 and "the cache folder must be a folder" in err and err.count("\n") == 1
    assert image.read_bytes() == before
