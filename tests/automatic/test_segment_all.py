"""``segment_all`` / ``iter_segment_stack``: edge cases with a tiny random SAM, and the whole
seeded pipeline with an oracle decoder (ground-truth masks per prompt) in place of SAM."""

from pathlib import Path

import numpy as np
import pytest
import torch

import napari_devosam.automatic.decoding as decoding
import napari_devosam.engine.embeddings as embeddings
from napari_devosam.automatic import AutoResult, GridParams, iter_segment_stack, segment_all
from napari_devosam.automatic.metrics import match_scores
from napari_devosam.automatic.neighbour_seeds import seeds_from_labels
from napari_devosam.automatic.seeds import analyse_plane, stain_seeds
from napari_devosam.engine.predictor import Predictor
from napari_devosam.synthetic.phantoms import make_embryo, make_timelapse
from napari_devosam.testing import tiny_sam

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def predictor():
    return Predictor(tiny_sam())


class OracleDecoder:
    """PromptDecoder's interface; the "low-res" logits are plane-sized: +4 on the true object
    under the prompt point, -4 elsewhere (all -4 on background)."""

    def __init__(self, truth):
        self.truth = truth
        self.threshold = 0.0
        self.valid = truth.shape
        self.plane_shape = truth.shape

    def decode(self, points_rc=None, boxes_rc=None, multimask=False):
        pts = np.asarray(points_rc)[:, 0]
        ids = self.truth[np.round(pts[:, 0]).astype(int), np.round(pts[:, 1]).astype(int)]
        low = np.where((self.truth[None] == ids[:, None, None]) & (ids[:, None, None] > 0),
                       4.0, -4.0)
        c = 3 if multimask else 1
        low = torch.as_tensor(low, dtype=torch.float32)[:, None].expand(-1, c, -1, -1)
        return low.contiguous(), torch.full((len(pts), c), 0.9)

    def upscale(self, low_res):
        return low_res


@pytest.fixture
def oracle(monkeypatch):
    def install(truth):
        monkeypatch.setattr(decoding, "PromptDecoder", lambda sam, emb: OracleDecoder(truth))
        monkeypatch.setattr(embeddings, "embed_plane", lambda *a, **k: None)
    return install


@pytest.mark.parametrize("kind, seed", [("membrane", 10_000_100), ("nuclei", 10_000_101)])
def test_seeded_pipeline_with_oracle_masks_is_exact(oracle, kind, seed):
    img, truth = make_embryo((192, 256), 14, seed=seed, kind=kind)
    oracle(truth)
    res = segment_all(img, torch.nn.Identity())
    assert res.stain == kind and res.message is None
    m = match_scores(res.labels, truth)
    assert m["f1"] == 1.0 and m["mean_iou"] > 0.97
    assert res.labels.dtype == np.int32 and sorted(res.scores) == list(range(1, 15))
    assert len(res.prompts) == 14 and all(p["box"] is not None for p in res.prompts)


@pytest.mark.parametrize("plane", [np.full((64, 80), np.nan), np.zeros((64, 80)),
                                   np.full((64, 80), 7, np.uint16),
                                   np.random.default_rng(0).normal(100, 10, (64, 80))],
                         ids=["nan", "zeros", "constant", "noise"])
@pytest.mark.parametrize("mode", ["seeded", "grid"])
def test_planes_without_embryo_give_empty_labels_and_a_message(predictor, counted, plane,
                                                               mode):
    res = segment_all(plane, predictor, mode=mode)
    assert isinstance(res, AutoResult) and res.message
    assert res.labels.shape == plane.shape and res.labels.dtype == np.int32
    assert not res.labels.any() and res.scores == {} and res.n_objects == 0
    assert counted[1] == []  # nothing was embedded


@pytest.fixture
def sam(predictor):
    return predictor.sam


def test_one_cell_plane(predictor):
    img, truth = make_embryo((96, 128), 1, seed=10_000_200)
    a = analyse_plane(img)
    seeds = stain_seeds(a)
    assert len(seeds) == 1 and truth[tuple(seeds.points[0].astype(int))] == 1
    res = segment_all(img, predictor)
    assert res.n_objects <= 1 and set(np.unique(res.labels)) <= {0, 1}
    assert sorted(res.scores) == list(range(1, res.n_objects + 1))


def test_grid_mode_runs_and_labels_are_consistent(predictor):
    img, _ = make_embryo((96, 128), 4, seed=10_000_300)
    res = segment_all(img, predictor, mode="grid",
                      grid_params=GridParams(points_per_side=4, pred_iou_thresh=0.0,
                                             stability_score_thresh=0.0))
    assert res.mode == "grid" and res.labels.shape == img.shape
    ids = np.unique(res.labels)
    assert list(ids[ids > 0]) == sorted(res.scores)


def test_unknown_mode_and_stain_raise(predictor):
    img = np.zeros((32, 32))
    with pytest.raises(ValueError, match="seeded, grid"):
        segment_all(img, predictor, mode="magic")
    with pytest.raises(ValueError, match="membrane"):
        segment_all(img, predictor, stain="dapi")


def test_neighbour_seeds_fill_in_where_the_stain_gives_none(oracle):
    stack, truth = make_timelapse(2, (128, 160), 5, seed=10_000_400, division_fraction=0.0)
    prev = seeds_from_labels(truth[0])
    assert len(prev) == truth[0].max()
    oracle(truth[1])
    # the stain says nothing (noise, "no embryo"): only the neighbour's objects seed
    faint = np.random.default_rng(0).normal(100, 5, stack[1].shape).astype(np.float32)
    res = segment_all(faint, torch.nn.Identity(), previous_labels=truth[0])
    assert res.n_objects >= truth[1].max() - 1
    assert {p["source"] for p in res.prompts} == {"neighbour"}


def test_a_nuclear_plane_with_its_own_seeds_takes_none_from_its_neighbour(oracle):
    """Nuclei move between frames: the previous frame's objects would seed fragments between
    them (DevoLearn nuclear movie: 137 objects on frame 30 in a stack run, 101 alone)."""
    img, truth = make_embryo((192, 256), 14, seed=10_000_101, kind="nuclei")
    hidden = truth == 3
    img = img.astype(np.float32)
    img[hidden] = np.median(img[truth == 0])  # the stain misses this nucleus here
    oracle(truth)
    alone = segment_all(img, torch.nn.Identity())
    with_neighbour = segment_all(img, torch.nn.Identity(), previous_labels=truth)
    assert alone.stain == with_neighbour.stain == "nuclei"
    assert "neighbour" not in {p["source"] for p in with_neighbour.prompts}
    assert np.array_equal(alone.labels, with_neighbour.labels)


def test_stack_generator_reports_progress_and_can_stop(oracle):
    stack, truth = make_timelapse(3, (96, 128), 3, seed=10_000_500)
    oracle(truth[0])
    gen = iter_segment_stack(stack, torch.nn.Identity())
    assert next(gen) == (0, 3)
    assert next(gen) == (1, 3)
    gen.close()  # stops between planes, nothing returned
    with pytest.raises(StopIteration):
        next(gen)
    gen = iter_segment_stack(stack, torch.nn.Identity(), planes=[(0,), (1,)])
    progress = []
    while True:
        try:
            progress.append(next(gen))
        except StopIteration as stop:
            results = stop.value
            break
    assert progress == [(0, 2), (1, 2), (2, 2)] and sorted(results) == [(0,), (1,)]
    assert match_scores(results[(0,)].labels, truth[0])["f1"] == 1.0


SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.mark.parametrize("name, stain", [("embryo_nuclei.png", "nuclei"),
                                         ("embryo_membrane.png", "membrane")])
def test_the_stain_of_the_real_images_is_recognised(name, stain):
    from napari_devosam.automatic.seeds import analyse_plane
    from napari_devosam.io.read import read_image

    if not (SHARED / name).is_file():
        pytest.skip("the team's real images (../shared/data) are not here")
    image = read_image(SHARED / name)  # the nuclear image is RGBA (green), as users have it
    assert analyse_plane(image).stain == stain
