"""Divisions need evidence (``tracking.divisions.evidence``), and a one-plane dip does not end
a track (``max_missed_planes``)."""

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from napari_devosam.synthetic.lineage import make_lineage_timelapse
from napari_devosam.tracking.divisions.evidence import refusal
from napari_devosam.tracking.params import PropagationParams
from napari_devosam.tracking.propagate import propagate
from napari_devosam.tracking.records import Crop, Seed
from napari_devosam.utils.progress import drain

sys.path.insert(0, str(Path(__file__).parent))
from tracking_oracle import OracleDecoder  # noqa: E402

SHAPE = (96, 96)


def _disk(centre, radius, shape=SHAPE) -> np.ndarray:
    rr, cc = np.ogrid[:shape[0], :shape[1]]
    return (rr - centre[0]) ** 2 + (cc - centre[1]) ** 2 <= radius ** 2


def _seeds(*points):
    return SimpleNamespace(points=np.array(points, dtype=float).reshape(-1, 2))


def _none():
    return np.zeros((0, 2))


def test_two_halves_with_a_seed_each_are_a_division():
    mother = Crop.from_mask(_disk((48, 48), 16))
    a, b = (Crop.from_mask(_disk((48, c), 11)) for c in (37, 59))
    assert refusal([a, b], mother, _seeds((48, 37), (48, 59)), _none, PropagationParams()) is None


def test_no_division_without_evidence():
    p = PropagationParams()
    mother = Crop.from_mask(_disk((48, 40), 14))
    kept = Crop.from_mask(_disk((48, 40), 14))  # the cell kept its size ...
    beside = Crop.from_mask(_disk((48, 72), 12))  # ... and a neighbour sits beside it
    assert "area" in refusal([kept, beside], mother, _seeds((48, 40), (48, 72)), _none, p)
    a, b = (Crop.from_mask(_disk((48, c), 9)) for c in (33, 50))
    assert refusal([a, b], mother, _seeds((48, 33)), _none, p) == "not two stain seeds"
    assert refusal([a, b], mother, None, _none, p) is None  # no seeds computed: size only

    def before():  # a seed sat near b's on the previous plane, outside the mother
        return np.array([[48.0, 40.0], [48.0, 55.0]])

    narrow = Crop.from_mask(_disk((48, 40), 13))
    assert "there before" in refusal([a, b], narrow, _seeds((48, 33), (48, 50)), before, p)
    off = PropagationParams(division_need_seeds=False)
    assert refusal([a, b], mother, _seeds((48, 33)), _none, off) is None


def test_a_one_plane_dip_does_not_end_a_track():
    stack, labels, _ = make_lineage_timelapse(4, (128, 128), 4, seed=1, division_fraction=0.0)
    oracle = OracleDecoder(labels)
    answer = oracle.decode

    def dip(boxes, points, mask_inputs):  # SAM loses track 1 on plane 1 only
        logits, low, iou = answer(boxes, points, mask_inputs)
        if oracle.embedding.plane == (1,):
            logits[0] = -10.0
        return logits, low, iou

    oracle.decode = dip
    seeds = [Seed(int(t), (0,), labels[0] == t) for t in np.unique(labels[0])[1:]]
    first = seeds[0].track
    params = PropagationParams(detect_divisions=False, redetect_lost=False)
    result = drain(propagate(None, stack, seeds, decoder=oracle,
                             embedding_for=oracle.embedding_for, params=params))
    planes = sorted(o.plane for o in result.objects if o.track == first)
    assert planes == [(2,), (3,)] and first not in result.ended
    assert any(r.reason == "found again" and r.track == first and r.plane == (2,)
               for r in result.review)
    at_once = PropagationParams(detect_divisions=False, redetect_lost=False,
                                max_missed_planes=0)
    oracle.calls.clear()
    result = drain(propagate(None, stack, seeds, decoder=oracle,
                             embedding_for=oracle.embedding_for, params=at_once))
    assert result.ended[first][0] == (1,)


def _membrane_plane(line: bool):
    """A membrane-stained plane's analysis: one cell (a ring of membrane), with a membrane
    across its middle (column 48) when ``line``."""
    smooth = np.full(SHAPE, 10.0, np.float32)
    ring = _disk((48, 48), 30) & ~_disk((48, 48), 27)
    smooth[ring] = 100.0
    if line:
        smooth[20:77, 47:50] = 100.0
    return SimpleNamespace(found=True, stain="membrane", smooth=smooth, t_high=50.0)


def test_a_division_needs_a_new_membrane_between_the_daughters():
    from napari_devosam.tracking.divisions.evidence import membrane_refusal

    cell = _disk((48, 48), 27)
    cols = np.arange(SHAPE[1])[None, :]
    halves = [Crop.from_mask(cell & (cols < 48)), Crop.from_mask(cell & (cols >= 48))]
    p = PropagationParams()
    asked = []

    def previous(line):
        def get():
            asked.append(line)
            return _membrane_plane(line)
        return get

    # a membrane now, none on the previous plane: a division
    assert membrane_refusal(halves, _membrane_plane(True), previous(False), p) is None
    # no membrane where the halves meet: one cell cut in two
    why = membrane_refusal(halves, _membrane_plane(False), previous(False), p)
    assert why.startswith("no membrane")
    # the membrane was there already: the mother's mask held two cells
    why = membrane_refusal(halves, _membrane_plane(True), previous(True), p)
    assert "there before" in why
    assert asked == [False, True]  # the previous plane is read only when needed
    # off, or nuclei, or daughters that do not meet: no say
    off = PropagationParams(division_min_membrane=0)
    assert membrane_refusal(halves, _membrane_plane(False), previous(False), off) is None
    nuclei = _membrane_plane(False)
    nuclei.stain = "nuclei"
    assert membrane_refusal(halves, nuclei, previous(False), p) is None
    apart = [Crop.from_mask(_disk((20, 20), 5)), Crop.from_mask(_disk((70, 70), 5))]
    assert membrane_refusal(apart, _membrane_plane(False), previous(False), p) is None


def test_a_young_daughter_does_not_divide_again():
    """A daughter split again 1-2 planes after its birth is a flickering mask (new-user
    trial on the DevoLearn nuclear movie): kept as one cell until division_min_age."""
    from napari_devosam.tracking.divisions.evidence import refuse_unproven

    mother = Crop.from_mask(_disk((48, 48), 16))
    halves = [Crop.from_mask(_disk((48, c), 11)) for c in (37, 59)]
    seeds, p = _seeds((48, 37), (48, 59)), PropagationParams()
    assert refuse_unproven([list(halves)], [mother], [mother], seeds, _none, p) == []
    for age, refused in [(1, True), (2, True), (3, False), (None, False)]:
        found = [list(halves)]
        why = refuse_unproven(found, [mother], [mother], seeds, _none, p, ages=[age])
        assert bool(why) == refused, (age, why)
        assert len(found[0]) == (1 if refused else 2)
        if refused:
            assert "a daughter followed on" in why[0][1]
    off = PropagationParams(division_min_age=0)
    assert refuse_unproven([list(halves)], [mother], [mother], seeds, _none, off,
                           ages=[1]) == []


def _nuclear_plane(levels, centres, radius=10):
    """A nuclear-stained plane: discs of the given brightness on a dim background, and its
    analysis (``automatic.seeds.analyse_plane``)."""
    from napari_devosam.automatic.seeds import analyse_plane

    rng = np.random.default_rng(0)
    img = 100.0 + rng.normal(0, 5, SHAPE)
    for level, centre in zip(levels, centres, strict=True):
        img[_disk(centre, radius)] = level
    return analyse_plane(img.astype(np.float32), "nuclei")


def test_sisters_are_alike_in_brightness_on_a_nuclear_plane():
    from napari_devosam.tracking.divisions.evidence import brightness_refusal

    a, b = (Crop.from_mask(_disk((48, c), 10)) for c in (30, 66))
    p = PropagationParams()
    alike = _nuclear_plane([1000, 850], [(48, 30), (48, 66)])
    assert alike.stain == "nuclei"
    assert brightness_refusal([a, b], alike, p) is None
    halo = _nuclear_plane([1000, 300], [(48, 30), (48, 66)])  # 0.22 of her sister
    why = brightness_refusal([a, b], halo, p)
    assert why is not None and "as bright as her sister" in why
    assert brightness_refusal([a, b], halo, PropagationParams(division_min_brightness=0)) is None
    assert brightness_refusal([a, b], None, p) is None  # no analysis: no rule


def test_daughters_outlined_by_detections_are_held_again_to_sisters_alike():
    from napari_devosam.tracking.divisions.evidence import refuse_unlike

    a, b = (Crop.from_mask(_disk((48, c), 10)) for c in (30, 66))
    halo = _nuclear_plane([1000, 300], [(48, 30), (48, 66)])
    alike = _nuclear_plane([1000, 850], [(48, 30), (48, 66)])
    shifted = Crop.from_mask(_disk((48, 32), 10))
    one = Crop.from_mask(_disk((20, 20), 5))
    groups = [[a, b], [one]]
    assert refuse_unlike(groups, [shifted, one], lambda: halo, PropagationParams()) == [0]
    assert groups[0] == [a] and groups[1] == [one]  # the part the mother overlaps most
    groups = [[a, b]]
    assert refuse_unlike(groups, [shifted], lambda: alike, PropagationParams()) == []
    assert len(groups[0]) == 2
