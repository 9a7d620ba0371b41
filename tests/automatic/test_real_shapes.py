"""Shapes real planes have and our phantoms lack.

- The stain of a plane of separate bright objects: rings (membrane-stained cells) stay
  membrane, filled objects are nuclei even when their shape scores as lines (thin, elongated
  nuclei here; CTC HeLa's many small nuclei scored 0.85 on the real source).
- The size of nuclei packed into a glowing embryo (DevoLearn nuclear movie frame 30).
- Nuclei the dim cytoplasm does not join to the rest (DevoLearn nuclear movie frame 10).
"""

import numpy as np

from napari_devosam.automatic.seeds import analyse_plane
from napari_devosam.automatic.stain import StainDecision, separate_objects_rule


def _plane(kind: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:300, :400]
    img = rng.normal(100, 5, (300, 400))
    if kind == "rings":
        for r, c in [(60, 60), (60, 200), (200, 100), (220, 300), (100, 330)]:
            d = np.hypot(yy - r, xx - c)
            img += ((d > 22) & (d < 27)) * 80
        return img
    for _ in range(16):  # thin filled rods: their ridge score alone says "lines"
        r, c, th = rng.uniform(30, 270), rng.uniform(30, 370), rng.uniform(0, np.pi)
        u = (yy - r) * np.cos(th) + (xx - c) * np.sin(th)
        v = -(yy - r) * np.sin(th) + (xx - c) * np.cos(th)
        img += ((u / 22) ** 2 + (v / 3.5) ** 2 < 1) * 80
    return img


def test_separate_rings_stay_membrane():
    a = analyse_plane(_plane("rings"))
    assert a.sparse and a.stain == "membrane"


def test_filled_objects_are_never_membrane():
    a = analyse_plane(_plane("rods"))
    assert a.sparse and a.stain == "nuclei"
    assert a.stain.score >= 0.8  # the ridge score alone would have said membrane


def test_the_rule_turns_only_a_membrane_call_on_filled_objects():
    filled = np.zeros((50, 50), bool)
    filled[10:20, 10:20] = True
    ring = filled.copy()
    ring[12:18, 12:18] = False
    membrane = StainDecision("membrane", True, 0.9, "stain: membrane (...)")
    turned = separate_objects_rule(membrane, filled)
    assert turned == "nuclei" and "enclosing no interior" in turned.note
    assert separate_objects_rule(membrane, ring) is membrane
    nuclei = StainDecision("nuclei", True, 0.3, "stain: nuclei (...)")
    assert separate_objects_rule(nuclei, ring) is nuclei
    assert separate_objects_rule(membrane, np.zeros((5, 5), bool)) is membrane


def test_nuclei_packed_into_an_embryo_give_the_nuclei_size():
    """An embryo full of nuclei is a bright blob too; the nuclei's own scale must win
    (scale.blob_scale: the smallest strong peak, not the largest)."""
    from scipy import ndimage

    from napari_devosam.automatic.scale import blob_scale

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:360, :480]
    img = rng.normal(20, 3, (360, 480))
    inside = ((yy - 180) / 150) ** 2 + ((xx - 240) / 210) ** 2 < 1
    img += inside * 120  # the embryo's glow is brighter than the nuclei stand above it
    for r in range(40, 330, 22):
        for c in range(40, 450, 22):
            if inside[r, c]:
                img += (np.hypot(yy - r, xx - c) < 9) * 60
    img = ndimage.gaussian_filter(img, 1)
    d = blob_scale(img, np.ones(img.shape, bool))
    assert 12 <= d <= 30, d  # nuclei 18 px across; the embryo's own scale gave 161


def _cluster_and_strays(seed: int = 4) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """A dim embryo holding 9 nuclei, and 3 nuclei on the dark plane beside it, the
    brightest of all (frame 10 of the DevoLearn nuclear movie in miniature)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:300, :420]
    img = rng.normal(10, 2, (300, 420))
    body = ((yy - 150) / 110) ** 2 + ((xx - 250) / 140) ** 2 < 1
    img += body * 25
    inner = [(90 + 60 * i, 170 + 70 * j) for i in range(3) for j in range(3)]
    strays = [(60, 40), (150, 45), (240, 40)]
    for (r, c), gain in [(p, 90) for p in inner] + [(p, 160) for p in strays]:
        img += (np.hypot(yy - r, xx - c) < 14) * gain
    return ndimage.gaussian_filter(img, 1), strays


def test_nuclei_outside_the_largest_region_keep_their_seeds():
    from napari_devosam.automatic.seeds import stain_seeds

    img, strays = _cluster_and_strays()
    a = analyse_plane(img)
    assert not a.sparse and a.stain == "nuclei"
    assert all(a.embryo[r, c] for r, c in strays)
    seeds = stain_seeds(a)
    for r, c in strays:
        assert np.min(np.hypot(*(seeds.points - (r, c)).T)) < 8, (r, c)
    assert 11 <= len(seeds) <= 13


def test_a_bright_speck_does_not_join_the_embryo():
    from napari_devosam.automatic.seeds import with_bright_parts

    img, _ = _cluster_and_strays()
    img[10:13, 400:403] += 300  # 9 px: under min_area
    a = analyse_plane(img)
    assert not a.embryo[11, 401]
    lone = np.zeros_like(a.embryo)
    assert not with_bright_parts(lone, a.smooth, a.t_low, a.t_high, 30)[11, 401]


def test_a_seed_box_covers_its_whole_nucleus_but_not_a_clump():
    """A blob box over part of an elongated nucleus grows to the whole nucleus (cells3d,
    CHO: SAM outlined halves); three touching nuclei keep their own boxes."""
    from scipy import ndimage

    from napari_devosam.automatic.seeds import nuclei_seeds

    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[:200, :300]
    img = rng.normal(10, 2, (200, 300))
    rod = ((yy - 60) / 10) ** 2 + ((xx - 80) / 22) ** 2 < 1  # 44 x 20 px
    img += rod * 200
    clump = [(140, 150), (140, 180), (140, 210)]  # touching 28 px nuclei
    for r, c in clump + [(50, 230), (160, 40)]:
        img += (np.hypot(yy - r, xx - c) < 14) * 200
    a = analyse_plane(ndimage.gaussian_filter(img, 1), "nuclei")
    seeds = nuclei_seeds(a, diameter=30.0)
    on_rod = [k for k, (r, c) in enumerate(seeds.points) if rod[int(r), int(c)]]
    assert on_rod
    for k in on_rod:
        r0, c0, r1, c1 = seeds.boxes[k]
        assert r0 <= 50 and c0 <= 58 and r1 >= 70 and c1 >= 102, seeds.boxes[k]
    for r, c in clump:
        k = int(np.argmin(np.hypot(*(seeds.points - (r, c)).T)))
        r0, c0, r1, c1 = seeds.boxes[k]
        assert c1 - c0 < 40 and abs(seeds.points[k][1] - c) < 5  # its own box
