"""`devosam import-tracks` through the CLI's main(): import, refusals, the round trip."""

import numpy as np
import pytest
import tifffile

from napari_devosam.cli import main
from napari_devosam.synthetic.lineage import make_lineage_timelapse
from napari_devosam.tracking.track_files import write_ctc


@pytest.fixture
def movie(tmp_path):
    stack, labels, parents = make_lineage_timelapse(6, (96, 96), 3, seed=2)
    tifffile.imwrite(tmp_path / "movie.tif", stack)
    write_ctc(tmp_path / "res", labels, parents)
    return tmp_path


def _same(a, b):
    assert (a / "res_track.txt").read_text() == (b / "res_track.txt").read_text()
    for path in sorted(a.glob("mask*.tif")):
        assert np.array_equal(tifffile.imread(path), tifffile.imread(b / path.name)), path.name


def test_import_then_export_only_reproduces_the_result(movie, capsys):
    movie_path = str(movie / "movie.tif")
    assert main(["import-tracks", str(movie / "res"), "--image", movie_path]) == 0
    out = capsys.readouterr().out
    assert "imported" in out and "division" in out
    assert main(["track", movie_path, "--annotations", "--export-only",
                 "--out", str(movie / "out")]) == 0
    _same(movie / "res", movie / "out")


def test_existing_objects_need_replace(movie, capsys):
    args = ["import-tracks", str(movie / "res"), "--image", str(movie / "movie.tif")]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "--replace" in err and len(err.strip().splitlines()) == 1
    assert main([*args, "--replace"]) == 0
    assert "replacing" in capsys.readouterr().out


def test_bad_folder_and_bad_result_are_one_line(movie, capsys):
    assert main(["import-tracks", str(movie / "nowhere"), "--image",
                 str(movie / "movie.tif")]) == 1
    assert "is not a folder" in capsys.readouterr().err
    (movie / "res" / "res_track.txt").write_text("1 0 99 0\n")
    assert main(["import-tracks", str(movie / "res"), "--image", str(movie / "movie.tif")]) == 1
    err = capsys.readouterr().err
    assert "track 1 ends on frame 99" in err and len(err.strip().splitlines()) == 1
    assert not (movie / "movie.tif.devosam" / "store.json").exists()


def test_geff_import_from_the_cli(movie, capsys):
    pytest.importorskip("geff")
    movie_path = str(movie / "movie.tif")
    assert main(["import-tracks", str(movie / "res"), "--image", movie_path]) == 0
    assert main(["track", movie_path, "--annotations", "--export-only", "--geff",
                 "--out", str(movie / "out")]) == 0
    assert main(["import-tracks", str(movie / "res"), "--image", movie_path, "--replace",
                 "--geff", str(movie / "out" / "tracks.geff")]) == 0
    assert main(["track", movie_path, "--annotations", "--export-only",
                 "--out", str(movie / "again")]) == 0
    _same(movie / "res", movie / "again")
