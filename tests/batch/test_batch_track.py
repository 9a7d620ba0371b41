"""The batch's track step in this process (no cluster), with a tiny random SAM: the files it
writes and the seed labels it refuses (the same check as ``devosam track``)."""

import numpy as np
import pytest
import tifffile
import torch

import napari_devosam.models.loading as model_loading
from napari_devosam.batch.tasks import run_step
from napari_devosam.synthetic.lineage import make_lineage_timelapse
from napari_devosam.testing import tiny_sam


@pytest.fixture
def job(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    ckpt = tmp_path / "tiny.pth"
    torch.save(tiny_sam(seed=3).state_dict(), ckpt)
    real_load = model_loading.load_model

    def load(model=None, **kw):  # the job's model name stands for the tiny checkpoint
        return real_load(str(ckpt), builder=tiny_sam, **kw)

    monkeypatch.setattr(model_loading, "load_model", load)
    stack, labels, _ = make_lineage_timelapse(4, (96, 96), 3, seed=2)
    tifffile.imwrite(tmp_path / "movie.tif", stack)
    tifffile.imwrite(tmp_path / "seeds.tif", labels[0].astype(np.uint16))
    return {"path": str(tmp_path / "movie.tif"), "seed_labels": str(tmp_path / "seeds.tif"),
            "model": f"tiny-{tmp_path.name}", "device": "cpu", "decoder": None,
            "cache_dir": str(tmp_path / "cache"), "out_dir": str(tmp_path / "out"),
            "stem": "movie", "fmt": "tif"}


def test_track_step_writes_ctc_tracks_without_review(job, tmp_path):
    done = run_step("track", job)
    folder = tmp_path / "out" / "movie_tracks"
    assert done["outputs"] == ["movie_tracks"] and done["planes"] == 4
    assert sorted(p.name for p in folder.iterdir()) == [
        *(f"mask{i:03d}.tif" for i in range(4)), "res_track.txt", "tracks.csv"]
    assert done["objects"] == len((folder / "res_track.txt").read_text().splitlines()) >= 3
    assert set(np.unique(tifffile.imread(folder / "mask000.tif"))) == {0, 1, 2, 3}


def test_track_step_refuses_bad_seed_labels(job, tmp_path):
    for labels, message in ((np.ones((5, 5), np.uint16), "fit neither"),
                            (np.zeros((96, 96), np.uint16), "no objects")):
        tifffile.imwrite(tmp_path / "bad.tif", labels)
        with pytest.raises(ValueError, match=message):
            run_step("track", {**job, "seed_labels": str(tmp_path / "bad.tif")})
    assert not (tmp_path / "out" / "movie_tracks").exists()
