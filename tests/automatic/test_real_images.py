"""Automatic segmentation on real-looking input: the stain decision and its note, the cell
size estimate and ``diameter``, a lone nucleus on a noisy dark plane, box-shaped masks; and
the team's two real C. elegans images (skipped when ../shared/data is absent)."""

from pathlib import Path

import numpy as np
import pytest
import torch

import napari_devosam.automatic.decoding as decoding
import napari_devosam.engine.embeddings as embeddings
from napari_devosam.automatic import segment_all
from napari_devosam.automatic.decoding import Proposal
from napari_devosam.automatic.postprocess import is_box_shaped, size_filter
from napari_devosam.automatic.report import summary_lines
from napari_devosam.automatic.seeds import analyse_plane, stain_seeds
from napari_devosam.synthetic.phantoms import make_embryo

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def _disc_plane(shape, centres, radius, rng, noise=8.0, level=60.0, texture=0.0):
    """A dark noisy plane (8-bit-like, background clipped at 0) with bright discs."""
    rr, cc = np.mgrid[:shape[0], :shape[1]]
    img = np.zeros(shape)
    truth = np.zeros(shape, dtype=np.int32)
    for i, (r, c) in enumerate(centres, start=1):
        inside = (rr - r) ** 2 + (cc - c) ** 2 <= radius ** 2
        img[inside] = level
        truth[inside] = i
    img = img * (1 + texture * rng.standard_normal(shape))
    return np.clip(img + rng.normal(0, noise, shape), 0, 255), truth


class OracleDecoder:
    """PromptDecoder's interface answering each prompt with the true object under its point
    (as tests/automatic/test_segment_all.py)."""

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


@pytest.fixture
def oracle(monkeypatch):
    def install(truth):
        monkeypatch.setattr(decoding, "PromptDecoder", lambda sam, emb: OracleDecoder(truth))
        monkeypatch.setattr(embeddings, "embed_plane", lambda *a, **k: None)
    return install


def test_a_single_noisy_nucleus_is_found_not_no_embryo(oracle):
    rng = np.random.default_rng(10_000_600)
    img, truth = _disc_plane((200, 300), [(110, 190)], 30, rng, noise=10.0, level=55.0,
                             texture=0.3)
    a = analyse_plane(img)
    assert a.found, a.message
    assert a.stain == "nuclei" and "decided from the image" in a.stain_note
    seeds = stain_seeds(a)
    assert len(seeds) == 1 and truth[tuple(np.round(seeds.points[0]).astype(int))] == 1
    assert 40 <= seeds.diameter <= 80 and seeds.diameter_source == "estimated"
    oracle(truth)
    res = segment_all(img, torch.nn.Identity())
    assert res.n_objects == 1 and res.message is None
    assert (res.labels > 0).sum() == (truth > 0).sum()


def test_low_snr_nuclei_get_one_seed_each():
    rng = np.random.default_rng(10_000_601)
    centres = [(60, 60), (60, 200), (150, 120), (160, 250)]
    img, truth = _disc_plane((220, 320), centres, 18, rng, noise=12.0, level=30.0,
                             texture=0.4)
    seeds = stain_seeds(analyse_plane(img))
    hit = truth[tuple(np.round(seeds.points).astype(int).T)]
    assert sorted(hit) == [1, 2, 3, 4]


def test_pure_noise_is_still_no_embryo():
    rng = np.random.default_rng(10_000_602)
    for plane in (rng.normal(100, 10, (128, 160)), np.clip(rng.normal(0, 8, (128, 160)), 0,
                                                           None)):
        a = analyse_plane(plane)
        assert not a.found and "no embryo" in a.message


@pytest.mark.parametrize("kind", ["membrane", "nuclei"])
def test_the_stain_decision_is_reported_and_given_stains_say_so(oracle, kind):
    img, truth = make_embryo((192, 256), 10, seed=10_000_610, kind=kind)
    oracle(truth)
    res = segment_all(img, torch.nn.Identity())
    assert res.stain == kind
    assert res.stain_note.startswith(f"stain: {kind} (decided from the image")
    assert "--stain to override" in res.stain_note
    assert summary_lines({(): res})[0] == res.stain_note
    other = "nuclei" if kind == "membrane" else "membrane"
    forced = segment_all(img, torch.nn.Identity(), stain=other)
    assert forced.stain == other and "given" in forced.stain_note
    # the wrong stain forced is said (a new-user trial got no word of it), the right one not
    assert forced.stain.contradicted
    assert f"but the image reads as {kind}: " in forced.stain_note
    assert forced.stain_note.endswith("check --stain)")
    right = segment_all(img, torch.nn.Identity(), stain=kind)
    assert not right.stain.contradicted
    assert right.stain_note == f"stain: {kind} (given with --stain)"
    lines = summary_lines({(0,): forced, (1,): right})
    assert lines[0] == f"stain: {kind} on 1 plane, {other} on 1 plane (given with --stain)" \
        or lines[0].endswith("(given with --stain)")
    assert lines[1] == f"1 plane read as the other stain, e.g. {forced.stain_note}"


def test_an_uncertain_reading_does_not_contradict_a_given_stain():
    from napari_devosam.automatic.stain import StainDecision, given

    unsure = StainDecision("nuclei", False, 0.77,
                           "stain: nuclei (uncertain, ...; --stain to choose)")
    assert not given("membrane", unsure).contradicted
    sure = StainDecision("nuclei", True, 0.5, "stain: nuclei (decided from the image, ridge "
                         "score 0.50: membranes from 0.80, nuclei up to 0.74; --stain to override)")
    against = given("membrane", sure, "stack")
    assert against.contradicted and against == "membrane"
    assert against.note == ("stain: membrane (given with --stain, but the stack reads as nuclei: "
                            "ridge score 0.50: membranes from 0.80, nuclei up to 0.74; check "
                            "--stain)")
    assert not given("nuclei", sure).contradicted
    # only a clear reading overrides the user's word (trial 18: right stains warned on small
    # crops scoring 0.69 and 0.80 and on pure background): 0.05 beyond the undecided band,
    # or nuclei by a rule whose evidence is not the score (a score above the band)
    for stain, score, warned in [("nuclei", 0.70, False), ("nuclei", 0.60, True),
                                 ("nuclei", 0.78, True), ("membrane", 0.82, False),
                                 ("membrane", 0.90, True)]:
        reading = StainDecision(stain, True, score, f"stain: {stain} (decided ...)")
        other = "membrane" if stain == "nuclei" else "nuclei"
        assert given(other, reading).contradicted is warned, (stain, score)


def test_the_diameter_is_estimated_and_an_override_is_honoured(oracle):
    img, truth = make_embryo((320, 320), 24, seed=10_000_620, kind="nuclei")
    areas = np.bincount(truth.ravel())[1:]
    true_d = 2 * np.sqrt(np.median(areas) / np.pi)
    oracle(truth)
    res = segment_all(img, torch.nn.Identity())
    assert res.diameter_source == "estimated" and abs(res.diameter - true_d) < 0.35 * true_d
    assert "estimated from the image" in res.size_note
    # a diameter far too large: blobs of that size are looked for, so neighbours merge (the
    # second round, sized by the objects found, would find the rest again)
    big = segment_all(img, torch.nn.Identity(), diameter=4 * true_d, second_round=False)
    assert big.diameter == 4 * true_d and big.diameter_source == "given"
    assert "given with --diameter" in big.size_note
    assert big.n_objects < res.n_objects
    with pytest.raises(ValueError, match="diameter"):
        segment_all(img, torch.nn.Identity(), diameter=0)


def test_the_size_filter_scales_with_the_diameter():
    assert size_filter(12, 100.0) == 12  # a given min_area wins
    assert size_filter(None, None) == 30
    assert size_filter(None, 8.0) < 30 < size_filter(None, 100.0)


def _proposal(mask, box=(10, 10)):
    h, w = mask.shape
    return Proposal((box[0], box[1], box[0] + h, box[1] + w), mask,
                    np.where(mask, 1.0, -1.0).astype(np.float32), 0.9, 0.9, {})


def test_box_shaped_masks_are_recognised():
    rr, cc = np.mgrid[:40, :40]
    disc = (rr - 19.5) ** 2 + (cc - 19.5) ** 2 <= 19 ** 2
    assert not is_box_shaped(_proposal(disc), (200, 200))
    assert is_box_shaped(_proposal(np.ones((30, 20), bool)), (200, 200))
    clipped = disc.copy()
    clipped[:, 30:] = False  # cut by a prompt box on the right ...
    clipped[32:] = False     # ... and below
    assert is_box_shaped(_proposal(clipped), (200, 200))
    # a cell cut by the plane's edges is not box-shaped for that
    corner = disc[:30, :30]
    assert not is_box_shaped(_proposal(corner, box=(0, 0)), (30, 30)) or corner.mean() >= 0.9


def test_no_box_shaped_objects_in_the_result(monkeypatch, oracle):
    img, truth = make_embryo((192, 256), 8, seed=10_000_630, kind="nuclei")
    oracle(truth)

    class BoxAnswers(OracleDecoder):
        """Answers box prompts with the box itself for every other seed."""

        def decode(self, points_rc=None, boxes_rc=None, multimask=False):
            low, iou = super().decode(points_rc, boxes_rc, multimask)
            low = low.clone()
            for i, b in enumerate(boxes_rc if boxes_rc is not None else []):
                if i % 2 == 0:
                    r0, c0, r1, c1 = (int(round(v)) for v in b)
                    low[i, :] = -4.0
                    low[i, :, r0:r1 + 1, c0:c1 + 1] = 4.0
            return low, iou

    monkeypatch.setattr(decoding, "PromptDecoder", lambda sam, emb: BoxAnswers(truth))
    res = segment_all(img, torch.nn.Identity())
    assert res.n_objects > 0
    for obj in range(1, res.n_objects + 1):
        rows, cols = np.nonzero(res.labels == obj)
        box_area = (np.ptp(rows) + 1) * (np.ptp(cols) + 1)
        assert len(rows) / box_area < 0.9


@pytest.mark.parametrize("name, stain", [("embryo_nuclei.png", "nuclei"),
                                         ("embryo_membrane.png", "membrane")])
def test_the_real_images_stain_note_and_seed_counts(name, stain):
    from skimage import io as skio

    if not (SHARED / name).is_file():
        pytest.skip("the team's real images (../shared/data) are not here")
    a = analyse_plane(skio.imread(SHARED / name))
    assert a.stain == stain and "decided from the image" in a.stain_note
    seeds = stain_seeds(a)
    # counted by eye on the images: 5-6 membrane cells; ~90 nuclei, about half in focus
    low, high = (3, 9) if stain == "membrane" else (40, 120)
    assert low <= len(seeds) <= high


def test_a_zero_padded_offset_plane_keeps_its_stain_and_seeds():
    """A CTC HeLa crop padded with 0 was read as one membrane cell (``engine.fill``)."""
    from scipy import ndimage

    rng = np.random.default_rng(10_000_713)
    rr, cc = np.mgrid[:240, :320]
    plane = np.full(rr.shape, 33_000.0)
    for r, c in rng.uniform([30, 30], [210, 290], size=(12, 2)):
        plane[(rr - r) ** 2 + (cc - c) ** 2 <= 12 ** 2] += 2_000
    plane = np.round(ndimage.gaussian_filter(plane, 1.5) + rng.normal(0, 20, plane.shape))
    plane = plane.astype(np.uint16)
    alone = stain_seeds(analyse_plane(plane))
    padded = analyse_plane(np.pad(plane, 60, constant_values=0))
    assert padded.stain == "nuclei"
    assert abs(len(stain_seeds(padded)) - len(alone)) <= 1
