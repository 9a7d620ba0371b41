"""Every command that reads one image accepts the same files (io.read), and a folder or a glob
given to it says so in the user's terms (issue 24 item 2, issue 25 "Messages")."""

import types

import numpy as np
import pytest
import tifffile

import napari_devosam.models.loading as model_loading
from napari_devosam.cli import main

STACK = np.random.default_rng(0).integers(0, 4000, (4, 40, 50), dtype=np.uint16)
PLANE = np.random.default_rng(1).integers(0, 255, (40, 50), dtype=np.uint8)


class _FakeBioImage:
    """bioio's ``BioImage`` over arrays registered per file name (bioio is optional)."""

    data: dict = {}

    def __init__(self, path):
        self.tzyx = self.data[str(path)]
        self.dims = types.SimpleNamespace(C=1)  # bioio's Dimensions: one channel

    def get_image_data(self, order, C=0, **index):  # noqa: N803 - bioio's names
        assert C == 0
        if order == "TZYX":
            return self.tzyx
        assert order == "YX", order
        return self.tzyx[index["T"], index["Z"]]


@pytest.fixture
def files(tmp_path, monkeypatch):
    """One plane and one (T, Y, X) stack in each format the readers take; the model loader
    stops every command right after its image was read."""
    bioio = types.ModuleType("bioio")
    bioio.BioImage = _FakeBioImage
    monkeypatch.setitem(__import__("sys").modules, "bioio", bioio)
    monkeypatch.setattr(_FakeBioImage, "data", {})

    def stop(*args, **kwargs):
        raise RuntimeError("reached the model")

    monkeypatch.setattr(model_loading, "load_model", stop)
    (tmp_path / "model.pth").write_bytes(b"")  # --model: a file that exists (checked early)
    from skimage import io as skio

    planes, stacks = {}, {}
    for name in ("plane.tif", "plane.ome.tif", "plane.png", "plane.jpg"):
        if name.endswith(".tif"):
            tifffile.imwrite(tmp_path / name, PLANE)
        else:
            skio.imsave(tmp_path / name, PLANE, check_contrast=False)
        planes[name] = tmp_path / name
    for name in ("stack.tif", "stack.ome.tif", "stack.czi", "stack.nd2", "stack.lif"):
        if name.endswith(".tif"):
            tifffile.imwrite(tmp_path / name, STACK, photometric="minisblack")
        else:
            (tmp_path / name).write_bytes(b"")
            _FakeBioImage.data[str(tmp_path / name)] = STACK[:, None]  # T, Z=1, Y, X
        stacks[name] = tmp_path / name
    seeds = tmp_path / "seeds.tif"
    tifffile.imwrite(seeds, (np.arange(40 * 50).reshape(40, 50) % 3).astype(np.uint16))
    (tmp_path / "pngs").mkdir()
    skio.imsave(tmp_path / "pngs" / "a.png", PLANE, check_contrast=False)
    skio.imsave(tmp_path / "pngs" / "b.png", PLANE, check_contrast=False)
    return {"tmp": tmp_path, "planes": planes, "stacks": stacks, "seeds": seeds}


def _argv(command, image, tmp, seeds):
    out, model = str(tmp / "out"), ["--model", str(tmp / "model.pth")]
    argv = {
        "segment": ["segment", image, "--box", "5,5,30,30", "--out", f"{out}.tif"],
        "segment --auto": ["segment", image, "--auto", "--out", f"{out}.tif"],
        "embed": ["embed", image, "--cache-dir", str(tmp / "cache")],
        "track": ["track", image, "--seed-labels", seeds, "--out", out],
        "export": ["export", image, "--labels", seeds, "--out", out],
    }[command]
    return argv if command == "export" else [*argv, *model]


ONE_FILE_COMMANDS = ("segment", "segment --auto", "embed", "track", "export")


def _one_line_error(capsys, command) -> str:
    err = capsys.readouterr().err
    assert err.startswith(f"devosam {command.split()[0]}: error: "), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize("command", ("segment", "segment --auto", "embed"))
def test_plane_commands_read_every_format(files, capsys, command):
    for name, path in {**files["planes"], **files["stacks"]}.items():
        argv = _argv(command, str(path), files["tmp"], str(files["seeds"]))
        if name.startswith("stack"):
            argv += ["--plane", "1"] if command != "embed" else []
        assert main(argv) == 1, name
        assert "error: reached the model" in capsys.readouterr().err, name


def test_track_and_export_read_every_stack_format(files, capsys):
    for name, path in files["stacks"].items():
        assert main(_argv("track", str(path), files["tmp"], str(files["seeds"]))) == 1, name
        assert "error: reached the model" in capsys.readouterr().err, name
        out = files["tmp"] / f"bundle-{name}"
        assert main(["export", str(path), "--labels", str(files["tmp"] / "labels.tif"),
                     "--out", str(out)]) == 1  # no labels file yet: the image was read first
        assert "--labels: no image file at" in _one_line_error(capsys, "export")
        tifffile.imwrite(files["tmp"] / "labels.tif",
                         np.stack([np.asarray(tifffile.imread(files["seeds"]))] * 4),
                         photometric="minisblack")
        assert main(["export", str(path), "--labels", str(files["tmp"] / "labels.tif"),
                     "--out", str(out), "--json"]) == 0, name
        (files["tmp"] / "labels.tif").unlink()


def test_a_missing_or_unreadable_option_file_names_its_option(files, capsys):
    """Trial 16: a missing --seed-labels file read "no image file at nope.tif", as a
    missing movie does."""
    stack = str(files["stacks"][next(iter(files["stacks"]))])
    for bad, said in [(files["tmp"] / "nope.tif", "--seed-labels: no image file at"),
                      (files["tmp"] / "junk.tif", "--seed-labels: cannot read"),
                      (files["tmp"] / "small.tif", "--seed-labels: seed labels of shape (7, 9)")]:
        if bad.name == "junk.tif":
            bad.write_text("not an image")
        if bad.name == "small.tif":
            tifffile.imwrite(bad, np.ones((7, 9), np.uint16))
        assert main(_argv("track", stack, files["tmp"], str(bad))) == 1
        assert said in _one_line_error(capsys, "track")


@pytest.mark.parametrize("command", ONE_FILE_COMMANDS)
def test_a_folder_given_to_a_one_file_command_points_to_annotate_and_batch(files, capsys,
                                                                           command):
    folder = str(files["tmp"] / "pngs")
    assert main(_argv(command, folder, files["tmp"], str(files["seeds"]))) == 1
    err = _one_line_error(capsys, command)
    assert f"{folder} is a folder, not an image file" in err
    assert f"devosam annotate {folder}" in err and f"devosam batch {folder}" in err
    assert "no image file at" not in err and "reached the model" not in err


@pytest.mark.parametrize("command", ONE_FILE_COMMANDS)
def test_a_glob_given_to_a_one_file_command_counts_its_files(files, capsys, command):
    pattern = str(files["tmp"] / "pngs" / "*.png")
    assert main(_argv(command, pattern, files["tmp"], str(files["seeds"]))) == 1
    err = _one_line_error(capsys, command)
    assert f"{pattern} names 2 image files" in err and f"devosam annotate '{pattern}'" in err


@pytest.mark.parametrize("command, flag", [("track", "--seed-labels"), ("export", "--labels")])
def test_a_folder_of_labels_says_the_option_takes_one_file(files, capsys, command, flag):
    folder = str(files["tmp"] / "pngs")
    argv = _argv(command, str(files["stacks"]["stack.tif"]), files["tmp"], folder)
    assert main(argv) == 1
    err = _one_line_error(capsys, command)
    assert f"{folder} is a folder, not an image file; {flag} takes one label image file" in err


def test_a_missing_file_still_says_so(files, capsys):
    assert main(_argv("segment", str(files["tmp"] / "nope.tif"), files["tmp"], "")) == 1
    assert "no image file at" in _one_line_error(capsys, "segment")


@pytest.mark.parametrize("command", ONE_FILE_COMMANDS)
def test_a_damaged_tiff_is_one_line(files, capsys, command):
    whole = files["tmp"] / "whole.tif"
    tifffile.imwrite(whole, np.zeros((3, 256, 256), np.uint16), photometric="minisblack")
    damaged = files["tmp"] / "damaged.tif"
    damaged.write_bytes(whole.read_bytes()[:3000])
    assert main(_argv(command, str(damaged), files["tmp"], str(files["seeds"]))) == 1
    assert "not a readable TIFF file" in _one_line_error(capsys, command)
