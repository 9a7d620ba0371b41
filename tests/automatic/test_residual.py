"""Second-round seeds (``automatic.residual``): a dim nucleus beside bright ones is found
once the bright ones are covered; the glow around a covered nucleus, texture on a bright
cytoplasm and plain noise give no seed; second-round masks only add nuclei."""

import numpy as np
import pytest
import torch

import napari_devosam.automatic.decoding as decoding
import napari_devosam.engine.embeddings as embeddings
from napari_devosam.automatic import segment_all
from napari_devosam.automatic.decoding import Proposal
from napari_devosam.automatic.residual import (
    MIN_SCORE,
    MIN_STABILITY,
    new_only,
    residual_seeds,
)
from napari_devosam.automatic.seeds import analyse_plane, stain_seeds

BRIGHT = [(60, 60), (60, 200), (170, 70), (180, 240)]
DIM = (120, 140)
RADIUS = 14


def _plane(seed: int, dim_level: float = 12.0, noise: float = 3.0):
    """Four bright nuclei (220) and one dim one (``dim_level``) on a dark noisy plane,
    blurred like a microscope; returns ``(image, truth)`` with the dim nucleus labelled 5."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    shape = (240, 300)
    rr, cc = np.mgrid[:shape[0], :shape[1]]
    img = np.full(shape, 10.0)
    truth = np.zeros(shape, dtype=np.int32)
    levels = [220.0] * len(BRIGHT) + [dim_level]
    for i, ((r, c), level) in enumerate(zip(BRIGHT + [DIM], levels, strict=True), start=1):
        inside = (rr - r) ** 2 + (cc - c) ** 2 <= RADIUS ** 2
        img[inside] += level
        truth[inside] = i
    img = ndimage.gaussian_filter(img, 1.5) + rng.normal(0, noise, shape)
    return np.clip(img, 0, 255), truth


def _hit(truth, seeds):
    pts = np.round(seeds.points).astype(int)
    return sorted(truth[pts[:, 0], pts[:, 1]].tolist())


def test_the_brightest_relative_first_round_misses_the_dim_nucleus():
    img, truth = _plane(10_000_700)
    first = stain_seeds(analyse_plane(img))
    assert 5 not in _hit(truth, first)  # what the second round is for


def test_a_dim_nucleus_beside_covered_bright_ones_gets_one_seed():
    img, truth = _plane(10_000_701)
    a = analyse_plane(img)
    seeds = residual_seeds(a, np.isin(truth, [1, 2, 3, 4]), 2 * RADIUS)
    assert _hit(truth, seeds) == [5]
    box = seeds.boxes[0]
    assert box[0] <= DIM[0] - RADIUS + 3 and box[2] >= DIM[0] + RADIUS - 3
    assert seeds.source == ["residual"] and seeds.diameter == 2 * RADIUS


def test_nothing_new_where_everything_is_covered_or_only_noise():
    img, truth = _plane(10_000_702)
    a = analyse_plane(img)
    assert len(residual_seeds(a, truth > 0, 2 * RADIUS)) == 0  # no seed on any glow
    rng = np.random.default_rng(10_000_703)
    noise = np.clip(rng.normal(10, 3, (240, 300)), 0, None)
    noise[100:130, 100:130] += 200  # one nucleus, covered
    b = analyse_plane(noise)
    covered = np.zeros(noise.shape, dtype=bool)
    covered[100:130, 100:130] = True
    assert len(residual_seeds(b, covered, 28)) == 0


def test_texture_on_a_bright_cytoplasm_is_not_a_nucleus():
    from scipy import ndimage

    rng = np.random.default_rng(10_000_704)
    rr, cc = np.mgrid[:240, :300]
    img = np.full((240, 300), 10.0)
    embryo = ((rr - 120) / 100) ** 2 + ((cc - 150) / 130) ** 2 <= 1
    img[embryo] = 90.0  # cytoplasm
    img += 12 * ndimage.gaussian_filter(rng.standard_normal(img.shape), 6) * 6 * embryo
    nucleus = (rr - 120) ** 2 + (cc - 150) ** 2 <= 14 ** 2
    img[nucleus] = 230.0
    img = np.clip(img + rng.normal(0, 3, img.shape), 0, 255)
    a = analyse_plane(img, "nuclei")
    assert len(residual_seeds(a, nucleus, 28)) == 0


def _proposal(box, mask, score=0.9, stability=0.9):
    return Proposal(box, mask, np.where(mask, 4.0, -4.0).astype(np.float32), score,
                    stability, {"point": [0, 0], "box": None, "source": "residual"})


def test_second_round_masks_only_add_confident_nuclei_of_a_nucleus_size():
    covered = np.zeros((80, 80), dtype=bool)
    covered[10:30, 10:30] = True
    square = np.ones((10, 10), dtype=bool)
    apart = _proposal((35, 35, 45, 45), square)
    overlapping = _proposal((25, 25, 35, 35), square)  # 25 % on the first round's
    unsure = _proposal((35, 5, 45, 15), square, score=MIN_SCORE - 0.01)
    unstable = _proposal((5, 35, 15, 45), square, stability=MIN_STABILITY - 0.01)
    tiny = _proposal((50, 5, 53, 8), np.ones((3, 3), dtype=bool))
    huge = _proposal((50, 20, 80, 80), np.ones((30, 60), dtype=bool))
    found = new_only([apart, overlapping, unsure, unstable, tiny, huge], covered, 100.0)
    assert found == [apart]


def test_a_flat_plane_gives_no_candidates_and_integer_steps_are_not_noise():
    from types import SimpleNamespace

    flat = np.full((300, 300), 117.0)  # a plane padded with its mean: float residue only
    flat[140:160, 140:160] = 120.0  # three grey levels: not a nucleus in integer data
    flat += np.random.default_rng(10_000_706).normal(0, 0.2, flat.shape)
    covered = np.zeros(flat.shape, dtype=bool)
    a = SimpleNamespace(smooth=flat, t_low=116.0, t_high=130.0, embryo=None, quantum=1.0)
    assert len(residual_seeds(a, covered, 20.0)) == 0


class _Oracle:
    """PromptDecoder's interface answering a prompt with the true object under its point."""

    def __init__(self, truth):
        self.truth, self.threshold = truth, 0.0
        self.valid = self.plane_shape = truth.shape

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


@pytest.mark.parametrize("second_round", [False, True])
def test_segment_all_outlines_the_dim_nucleus_in_its_second_round(monkeypatch, second_round):
    img, truth = _plane(10_000_705)
    monkeypatch.setattr(decoding, "PromptDecoder", lambda sam, emb: _Oracle(truth))
    monkeypatch.setattr(embeddings, "embed_plane", lambda *a, **k: None)
    res = segment_all(img, torch.nn.Identity(), second_round=second_round)
    found = sorted(set(np.unique(truth[res.labels > 0]).tolist()) - {0})
    assert found == ([1, 2, 3, 4, 5] if second_round else [1, 2, 3, 4])
