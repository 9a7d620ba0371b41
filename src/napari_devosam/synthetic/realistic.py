"""Harder, more realistic synthetic fluorescence planes, for training models that must work on
real microscopy (the phantoms in ``phantoms`` are clean and regular).

Two entry points, both deterministic for a given ``numpy.random.Generator``:

- ``make_nuclei_field(shape, rng)``: a field of nuclei as a nuclear stain shows them outside a
  neat embryo: sizes 6-200 px across, round to elongated, touching, textured (chromatin
  blobs, dark nucleoli), dim and bright, some out of focus (blurred, unlabelled when too
  blurred to outline), on a background with gradients and haze, imaged with few photons
  (Poisson-Gaussian noise), sometimes speckle, hot pixels, anisotropic pixels and saturation.
- ``degrade(image, labels, rng, kind)``: makes any labelled plane (a phantom) harder: per-cell
  dimming, gaps in membranes, out-of-focus haze, background gradients, anisotropic resampling,
  low-photon re-noising, speckle, 8- or 16-bit output.

Images are ``(H, W)`` ``uint8`` or ``uint16`` (or ``float32``); labels ``(H, W)`` ``int32``,
0 = background, ids need not be consecutive. Nothing here imports torch.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def _smooth_noise(shape, rng, scale: float) -> np.ndarray:
    """Zero-mean, unit-std smooth noise with features ~``scale`` px."""
    small = (max(2, int(shape[0] / max(scale, 1)) + 2), max(2, int(shape[1] / max(scale, 1)) + 2))
    coarse = rng.normal(0, 1, small)
    field = ndimage.zoom(coarse, (shape[0] / small[0] + 1e-6, shape[1] / small[1] + 1e-6),
                         order=3)[: shape[0], : shape[1]]  # fmt: skip
    if field.shape != tuple(shape):
        field = np.pad(field, [(0, shape[0] - field.shape[0]), (0, shape[1] - field.shape[1])],
                       mode="edge")  # fmt: skip
    return (field - field.mean()) / (field.std() + 1e-9)


def _background(shape, rng) -> np.ndarray:
    """Background in [0, ~1]: a linear gradient, a smooth field and (sometimes) vignetting."""
    h, w = shape
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    theta = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(theta) * cols / w + np.sin(theta) * rows / h)
    bg = rng.uniform(0, 1) * (ramp - ramp.min())
    bg += rng.uniform(0, 0.6) * (0.5 + 0.25 * _smooth_noise(shape, rng, rng.uniform(40, 200)))
    if rng.random() < 0.3:
        r2 = ((rows - h / 2) / h) ** 2 + ((cols - w / 2) / w) ** 2
        bg += rng.uniform(0.2, 0.8) * (1 - 2 * r2)
    return np.clip(bg, 0, None).astype(np.float32)


def _to_output(signal: np.ndarray, rng, dtype=None, min_photons: float = 4.0) -> np.ndarray:
    """Photon-limited imaging of ``signal`` (relative units, peak ~1) into an integer image;
    the peak photon count is log-uniform in ``[min_photons, 400]``."""
    peak_photons = float(np.exp(rng.uniform(np.log(min_photons), np.log(400))))
    x = np.clip(signal, 0, None) * peak_photons
    if rng.random() < 0.25:  # speckle: multiplicative gamma noise
        k = rng.uniform(4, 30)
        x = x * rng.gamma(k, 1 / k, x.shape)
    x = rng.poisson(x).astype(np.float32)
    read = rng.uniform(0.3, 4.0)
    x += rng.normal(0, read, x.shape).astype(np.float32)
    if rng.random() < 0.4:  # hot pixels
        n_hot = int(x.size * rng.uniform(1e-5, 3e-4)) + 1
        x.ravel()[rng.integers(0, x.size, n_hot)] = x.max() * rng.uniform(1, 3, n_hot)
    if dtype is None:
        dtype = (np.uint8, np.uint16)[int(rng.random() < 0.55)]
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return x.astype(np.float32)
    top = float(np.iinfo(dtype).max)
    if dtype.itemsize == 2 and rng.random() < 0.5:
        top = 4095.0  # a 12-bit camera in a 16-bit file
    offset = rng.uniform(0, 0.1) * top
    hi = np.percentile(x, 99.9) + 1e-6
    gain = top * rng.uniform(0.25, 1.3) / hi  # > 1/0.999-percentile: some saturation
    return np.clip(np.rint(offset + x * gain), 0, top).astype(dtype)


def _anisotropic(image: np.ndarray, labels: np.ndarray, rng):
    """Squash one axis by 1.3-3x (anisotropic pixels): a lower-resolution axis."""
    f = float(rng.uniform(1.3, 3.0))
    axis = int(rng.integers(2))
    zoom = [1.0, 1.0]
    zoom[axis] = 1 / f
    if image.shape[axis] * zoom[axis] < 32:
        return image, labels
    img = ndimage.zoom(image.astype(np.float32), zoom, order=1)
    lab = ndimage.zoom(labels, zoom, order=0)
    return img, lab


def make_nuclei_field(shape, rng: np.random.Generator, dtype=None, granular: float = 0.0):
    """A fluorescent nuclei plane and its labels (see the module docstring).

    ``shape``: ``(H, W)``, both >= 32. ``granular``: probability of a densely packed field
    (cover 45-75%, little overlap) whose nuclei carry fine granular chromatin (grain 0.7-2 px,
    bright foci), as in confocal nuclear stains (the ``skimage.data.cells3d`` look); with 0
    (the default) no extra random numbers are drawn, so the fields of earlier training runs
    repeat. Returns ``(image, labels)``.
    """
    h, w = (int(s) for s in shape)
    anisotropic = rng.random() < 0.2
    diam = float(np.exp(rng.uniform(np.log(6), np.log(min(200, 0.6 * min(h, w))))))
    cover = rng.uniform(0.08, 0.6)
    n_target = max(1, int(cover * h * w / (np.pi * (diam / 2) ** 2)))
    n_target = min(n_target, 400)
    labels = np.zeros((h, w), np.int32)
    signal = np.zeros((h, w), np.float32)
    blurred_layer = np.zeros((h, w), np.float32)
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    texture_big = _smooth_noise((h, w), rng, max(2.0, diam / 5))
    texture_small = _smooth_noise((h, w), rng, max(1.5, diam / 12))
    overlap_ok = rng.uniform(0, 0.25)  # how much a nucleus may hide behind others
    grain = None
    if granular > 0 and rng.random() < granular:
        cover = rng.uniform(0.45, 0.75)
        n_target = min(400, max(1, int(cover * h * w / (np.pi * (diam / 2) ** 2))))
        overlap_ok = rng.uniform(0, 0.05)
        grain = _smooth_noise((h, w), rng, rng.uniform(0.7, 2.0))
        grain_amp = rng.uniform(0.3, 0.8)
    next_id = 1
    tries = 0
    while next_id <= n_target and tries < 6 * n_target:
        tries += 1
        d = diam * float(np.exp(rng.normal(0, 0.25)))
        a = d / 2
        b = a * rng.uniform(0.55, 1.0)
        phi = rng.uniform(0, np.pi)
        cr, cc = rng.uniform(-0.1 * h, 1.1 * h), rng.uniform(-0.1 * w, 1.1 * w)
        m = 1.8 * a + 3  # the soft edge reaches past the outline
        r0, r1 = int(max(0, cr - m)), int(min(h, cr + m + 1))
        c0, c1 = int(max(0, cc - m)), int(min(w, cc + m + 1))
        if r1 - r0 < 2 or c1 - c0 < 2:
            continue
        dr, dc = rows[r0:r1, c0:c1] - cr, cols[r0:r1, c0:c1] - cc
        u = dc * np.cos(phi) + dr * np.sin(phi)
        v = -dc * np.sin(phi) + dr * np.cos(phi)
        wob = 1 + 0.08 * texture_big[r0:r1, c0:c1] * rng.uniform(0, 1)
        rad = np.sqrt((u / a) ** 2 + (v / b) ** 2) / wob  # 1 at the edge
        inside = rad <= 1
        if inside.sum() < 12:
            continue
        taken = labels[r0:r1, c0:c1] > 0
        if (inside & taken).sum() > overlap_ok * inside.sum():
            continue
        patch = _nucleus_pixels(rng, rad, dr, dc, b, texture_big[r0:r1, c0:c1],
                                texture_small[r0:r1, c0:c1])
        if grain is not None:  # fine chromatin grain and a few bright foci
            g = grain[r0:r1, c0:c1]
            patch = patch * np.clip(1 + grain_amp * g + 1.5 * (g > 2.0), 0.1, None)
        out_of_focus = rng.random() < 0.15
        if out_of_focus:
            blur = rng.uniform(0.12, 0.4) * d
            layer = np.zeros((h, w), np.float32)
            layer[r0:r1, c0:c1] = patch * rng.uniform(0.3, 0.8)
            blurred_layer += ndimage.gaussian_filter(layer, blur)
            if blur > 0.2 * d:
                continue  # too blurred to outline: haze, unlabelled
            # else labelled at its in-focus outline
            lab_patch = labels[r0:r1, c0:c1]
            lab_patch[inside & ~taken] = next_id
            next_id += 1
            continue
        # nearer objects hide farther ones where they overlap
        sig = signal[r0:r1, c0:c1]
        sig[...] = np.where(inside, np.maximum(patch, 0.5 * sig), np.maximum(sig, patch))
        lab_patch = labels[r0:r1, c0:c1]
        lab_patch[inside] = next_id
        next_id += 1
    return _finish_field(signal + blurred_layer, labels, diam, anisotropic, rng, dtype,
                         4.0 if grain is None else 40.0)


def _nucleus_pixels(rng, rad, dr, dc, b, texture_big, texture_small) -> np.ndarray:
    """One nucleus's intensity on its patch: brightness (sometimes dim), a soft edge, texture,
    sometimes a dark nucleolus or a brighter rim. ``rad`` is 1 on the outline; ``dr``/``dc``
    are offsets (rows, columns) from the centre; ``b`` the minor semi-axis in px."""
    level = float(np.exp(rng.normal(0, 0.45)))
    if rng.random() < 0.15:
        level *= rng.uniform(0.12, 0.35)  # dim
    edge = rng.uniform(0.03, 0.25)
    profile = 1 / (1 + np.exp((rad - 1) / edge))
    tex = (1 + rng.uniform(0, 0.35) * texture_big
           + rng.uniform(0, 0.3) * texture_small)  # fmt: skip
    if rng.random() < 0.3:  # dark nucleolus
        nr, nc = rng.normal(0, 0.3 * b), rng.normal(0, 0.3 * b)
        nrad = np.hypot(dr - nr, dc - nc) / max(1.0, 0.25 * b)
        tex = tex * (1 - rng.uniform(0.3, 0.7) * np.exp(-(nrad**2)))
    if rng.random() < 0.2:  # brighter rim (nuclear envelope staining)
        tex = tex * (1 + rng.uniform(0.2, 0.8) * np.exp(-(((rad - 0.9) / 0.1) ** 2)))
    return level * profile * np.clip(tex, 0.15, None)


def _finish_field(signal, labels, diam: float, anisotropic: bool, rng, dtype,
                  min_photons: float = 4.0):  # fmt: skip
    """Optics and camera on the summed nuclei: blur, background, haze, anisotropy, output."""
    h, w = signal.shape
    signal = ndimage.gaussian_filter(signal, rng.uniform(0.5, 1.8))
    bg_level = rng.uniform(0.0, 0.35)
    signal = signal + bg_level * _background((h, w), rng)
    if rng.random() < 0.3:  # cytoplasmic haze around nuclei
        signal += rng.uniform(0.03, 0.15) * ndimage.gaussian_filter(
            (labels > 0).astype(np.float32), max(2.0, diam / 2))
    labels = _clean_labels(labels, min_area=max(10, int(0.15 * np.pi * (diam / 2) ** 2)))
    if anisotropic:
        signal, labels = _anisotropic(signal, labels, rng)
        labels = _clean_labels(labels, 8)
    signal = signal / max(1e-6, float(np.percentile(signal, 99.5)))
    return _to_output(signal, rng, dtype, min_photons), labels


def _clean_labels(labels: np.ndarray, min_area: int) -> np.ndarray:
    """Keep each id's largest 4-connected piece, drop ids under ``min_area`` px, renumber."""
    out = np.zeros_like(labels)
    four = ndimage.generate_binary_structure(2, 1)
    k = 1
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        comp, n = ndimage.label(labels[sl] == i, structure=four)
        if n == 0:
            continue
        sizes = np.bincount(comp.ravel())[1:]
        j = int(np.argmax(sizes))
        if sizes[j] < min_area:
            continue
        out[sl][comp == j + 1] = k
        k += 1
    return out


def degrade(image: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
            kind: str = "nuclei", dtype=None):  # fmt: skip
    """A harder version of a labelled plane (see the module docstring).

    ``kind``: "membrane" (labels tile cells, membranes between them) or "nuclei". Returns
    ``(image, labels)``; the shape changes when anisotropic pixels are simulated.
    """
    x = image.astype(np.float32)
    lo, hi = np.percentile(x, (0.5, 99.8))
    x = np.clip((x - lo) / max(hi - lo, 1e-6), 0, None)
    bg = float(np.percentile(x, 5))
    fg = np.clip(x - bg, 0, None)
    ids = int(labels.max())
    if ids and rng.random() < 0.6:  # per-cell brightness, some cells dim
        gain = np.exp(rng.normal(0, 0.4, ids + 1)).astype(np.float32)
        gain[rng.random(ids + 1) < 0.15] *= rng.uniform(0.1, 0.35)
        gain[0] = 1.0
        field = ndimage.gaussian_filter(gain[labels], 3.0)
        fg = fg * field
    if kind == "membrane" and rng.random() < 0.7:  # gaps in membranes
        opened = ndimage.grey_opening(fg, size=(7, 7))
        gaps = _smooth_noise(fg.shape, rng, rng.uniform(8, 30)) > rng.uniform(0.3, 1.2)
        gaps = ndimage.gaussian_filter(gaps.astype(np.float32), 1.5)
        fg = fg * (1 - gaps) + opened * gaps
    if rng.random() < 0.3:  # texture in the cytoplasm / nucleus
        fg = fg * np.clip(1 + rng.uniform(0.1, 0.4) * _smooth_noise(fg.shape, rng, 4), 0.2, None)
    signal = fg
    if rng.random() < 0.4:  # out-of-focus haze from planes above/below
        signal = signal + rng.uniform(0.1, 0.5) * ndimage.gaussian_filter(fg, rng.uniform(4, 15))
    if rng.random() < 0.3:
        signal = ndimage.gaussian_filter(signal, rng.uniform(0.7, 2.0))
    signal = signal + rng.uniform(0, 0.4) * _background(signal.shape, rng)
    lab = labels
    if rng.random() < 0.15:
        signal, lab = _anisotropic(signal, labels, rng)
        lab = _clean_labels(lab, 8)
    signal = signal / max(1e-6, float(np.percentile(signal, 99.5)))
    return _to_output(signal, rng, dtype), lab.astype(np.int32)
