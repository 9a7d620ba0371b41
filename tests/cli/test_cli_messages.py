"""CLI messages in a biologist's terms (the new-user trial): planes out of range, negative
box coordinates, empty objects, where the planes to review are listed, the model names."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_devosam.cli import build_parser, join_negative_values, main


@pytest.fixture
def tiny(tiny_checkpoint):
    """A tiny checkpoint, loaded with the tiny architecture."""
    return tiny_checkpoint


def test_a_plane_outside_the_movie_is_said_in_planes(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "movie.tif", np.zeros((61, 16, 16), np.uint8))
    main(["segment", str(tmp_path / "movie.tif"), "--box", "1,1,8,8", "--plane", "99",
          "--model", "embryo_tiny", "--out", str(tmp_path / "o.tif")])
    assert capsys.readouterr().err.strip() == (
        "devosam segment: error: the image has 61 planes (0-60); --plane 99 is outside")


def test_a_box_with_negative_coordinates_is_a_box():
    argv = ["segment", "x.tif", "--box", "-50,-50,600,600", "--out", "o.tif"]
    assert build_parser().parse_args(join_negative_values(argv)).box == ["-50,-50,600,600"]


def test_a_negative_box_reaches_the_command(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "p.tif", np.zeros((32, 32), np.uint8))
    main(["segment", str(tmp_path / "p.tif"), "--box", "-50,-50,600,600", "--model",
          str(tmp_path / "none.pth"), "--out", str(tmp_path / "o.tif")])
    assert "expected one argument" not in capsys.readouterr().err


def test_empty_objects_are_said_with_the_objects_written(tmp_path, tiny, monkeypatch, capsys):
    from napari_devosam.cli import segment

    def only_the_first(predictor, boxes, points):  # objects 2 and 3 come out empty
        out = np.zeros(predictor.original_size, np.uint16)
        out[2:6, 2:6] = 1
        return out

    monkeypatch.setattr(segment, "segment_plane", only_the_first)
    tifffile.imwrite(tmp_path / "p.tif", np.arange(32 * 32, dtype=np.uint16).reshape(32, 32))
    out = tmp_path / "o.tif"
    main(["segment", str(tmp_path / "p.tif"), "--box", "1,1,8,8", "--box", "10,10,20,20",
          "--box", "20,20,30,30", "--model", tiny, "--device", "cpu", "--out", str(out)])
    assert capsys.readouterr().out.strip() == f"wrote 3 objects (2 of them empty: 2, 3) to {out}"


def test_track_names_the_file_of_the_planes_to_review(tmp_path, tiny, capsys):
    from napari_devosam.synthetic.lineage import make_lineage_timelapse

    stack, labels, _ = make_lineage_timelapse(3, (64, 64), 2, seed=2)
    tifffile.imwrite(tmp_path / "movie.tif", stack)
    tifffile.imwrite(tmp_path / "seeds.tif", labels[0].astype(np.uint16))
    main(["track", str(tmp_path / "movie.tif"), "--seed-labels", str(tmp_path / "seeds.tif"),
          "--model", tiny, "--device", "cpu", "--out", str(tmp_path / "t")])
    assert f"to review (listed in {tmp_path / 't' / 'review.csv'})" in capsys.readouterr().out


def test_an_unknown_model_lists_the_recommended_bundled_model_first():
    from napari_devosam.cli.checks import check_model
    from napari_devosam.models.registry import recommended_bundled

    with pytest.raises(ValueError, match=rf"^unknown model 'embry': use one of "
                                         rf"{recommended_bundled()} \(recommended"):
        check_model("embry")


def test_the_model_help_lists_the_recommended_bundled_model_first():
    from napari_devosam.cli import model_help
    from napari_devosam.models.registry import recommended_bundled

    assert model_help().startswith(f"{recommended_bundled()} (recommended")


def test_the_model_names_come_from_the_registry(monkeypatch):
    import napari_devosam.models.registry as registry
    from napari_devosam.cli.checks import bundled_names

    bundled = {**registry.BUNDLED, "embryo_v9": registry.BUNDLED["embryo_tiny"]}
    monkeypatch.setattr(registry, "BUNDLED", bundled)
    monkeypatch.setattr(registry, "ALIASES", {"demo": "embryo_tiny", "embryo": "embryo_v9"})
    assert bundled_names().startswith("embryo (recommended; alias of embryo_v9), embryo_v9, "
                                      "embryo_tiny (alias demo)")
