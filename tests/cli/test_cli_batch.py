"""`devosam batch`: its help and its one-line errors (no cluster is started for these)."""

import time

import pytest

from napari_devosam.cli import main


def test_help_names_steps_and_missing_ones(capsys):
    with pytest.raises(SystemExit):
        main(["batch", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "embed,auto" in out and "track" in out and "export" in out
    assert "Not available in batch yet: finetune, eval" in out


@pytest.mark.parametrize("args, message", [
    (["{tmp}/*.tif"], "no image file matches"),
    (["{tmp}"], "no image in folder"),
    (["{tmp}/x.tif", "--steps", "auto,segment"], "unknown step segment"),
    (["{tmp}/x.tif", "--steps", "track"], "the track step needs seeds"),
])
def test_bad_input_is_one_line(tmp_path, capsys, args, message):
    (tmp_path / "x.txt").write_text("")
    if "x.tif" in args[0]:
        (tmp_path / "x.tif").write_bytes(b"")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    rc = main(["batch", *args, "--out", str(tmp_path.parent / f"{tmp_path.name}-out"),
               "--format", "tif"])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and len(err.splitlines()) == 1 and message in err, err


def test_unreachable_scheduler_names_the_address(tmp_path, capsys):
    pytest.importorskip("distributed")
    (tmp_path / "in").mkdir()
    (tmp_path / "in/x.tif").write_bytes(b"")
    start = time.monotonic()
    rc = main(["batch", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--format", "tif",
               "--scheduler", "tcp://127.0.0.1:9", "--timeout", "2"])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and "tcp://127.0.0.1:9" in err and len(err.splitlines()) == 1, err
    assert time.monotonic() - start < 15


def test_the_precision_is_settled_before_any_cluster_starts(tmp_path, capsys, monkeypatch):
    from napari_devosam.batch.runner import BatchOptions
    from napari_devosam.cli import batch as batch_cli
    from napari_devosam.cli import build_parser

    (tmp_path / "x.tif").write_bytes(b"")
    out = tmp_path.parent / f"{tmp_path.name}-out"
    monkeypatch.setenv("DEVOSAM_PRECISION", "int8")
    rc = main(["batch", str(tmp_path / "x.tif"), "--out", str(out), "--format", "tif"])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and len(err.splitlines()) == 1 and "DEVOSAM_PRECISION" in err, err
    assert not out.exists()
    monkeypatch.setenv("DEVOSAM_PRECISION", "bf16")  # the client's choice, recorded as such
    args = build_parser().parse_args(["batch", str(tmp_path), "--out", str(out), "--format",
                                      "tif"])
    opts = batch_cli._options(args)
    assert isinstance(opts, BatchOptions) and opts.settings()["precision"] == "bf16"
