"""Real microscopy, not phantoms (issue 22): SAM prompts, automatic segmentation and baselines.

Sources are fetched at run time with pip into a cache (``real_sources.py``; never committed);
one that cannot be fetched is skipped with one line. Per labelled source, pooled over its
planes (``real_eval.py`` defines every score):

- each model (``--models``, ``--weights-file``): box IoU (and the share of boxes that gave
  an empty mask) and one-point IoU (SAM prompted
  through ``napari_devosam.Predictor`` with each truth object's box / centre point, at most
  ``--max-objects`` objects per source), automatic F1@0.5 and mSA (``automatic.segment_all``,
  seeded mode, ``--stain``), seconds per plane of the automatic run (embedding included);
- ``gauss+otsu``: the box IoU of Gaussian + Otsu inside the same boxes, and automatic scores
  of a global Gaussian + Otsu + connected parts;
- ``watershed``: automatic scores of the package's watershed (``automatic.baseline``).

Unlabelled real C. elegans (devolearn movies): objects found on frames 0, 30, 60 (the
person's counts written next to them for the membrane movie) and overlays. The targets of
issue 22 are checked on the fluorescence nuclear sources (dsb2018, cells3d, hela, cho).

Data of the Cell Tracking Challenge (hela, cho, psc) is used for evaluation only.

Usage::

    python benchmarks/bench_real.py                       # every source, default models
    python benchmarks/bench_real.py --quick               # dsb2018 + cells3d, 40 objects
    python benchmarks/bench_real.py --models embryo_tiny --weights-file new=/path/embryo.safetensors
    python benchmarks/bench_real.py --overlays docs/images --json real.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import real_eval as E  # noqa: E402
import real_litemedsam as L  # noqa: E402
import real_sources as R  # noqa: E402
from _common import machine, write_json  # noqa: E402

DEFAULT_MODELS = "embryo,embryo_tiny"  # + litemedsam unless --no-litemedsam
QUICK_SOURCES = "dsb2018,cells3d"
TARGET_KINDS = ("fluorescence nuclei",)
MOVIE_FRAMES = (0, 30, 60)
# cells counted by eye on the membrane movie's frames 0, 30, 60 (every 7th video frame; one
# optical section: a cell touching the section counts; uncertain ranges 6-8, 9-11, 6-7)
PERSON_COUNTS = {"membrane": {0: 7, 30: 10, 60: 6}}


def load_models(names: list[str], files: list[str]) -> dict[str, tuple[object, str]]:
    """``{label: (sam or None, note)}``; a model that does not load is kept with the reason."""
    from napari_devosam import load_model

    out = {}
    specs = [(n, n) for n in names] + [tuple(f.split("=", 1)) if "=" in f
                                       else (Path(f).stem, f) for f in files]
    for label, what in specs:
        try:
            out[label] = (load_model(what, device="cpu", progress=False), str(what))
        except Exception as exc:  # noqa: BLE001 - reported as "not run" in the table
            out[label] = (None, f"not run: {str(exc).split(':')[0][:80]}")
    return out


ZOOM = "auto"  # --zoom: small objects in zoomed views (engine/zoom.py)


def eval_model(sam, source, ids_per_plane, stain: str) -> dict:
    from napari_devosam import Predictor
    from napari_devosam.automatic.core import segment_all

    pred = Predictor(sam, cache_dir=None, zoom={"on": True, "off": False}.get(ZOOM, ZOOM))
    box, empty, point, counts, secs, stains, shown = [], [], [], [], [], set(), None
    for (plane, labels), ids in zip(source.planes, ids_per_plane, strict=True):
        t0 = time.perf_counter()
        emb = pred.set_image(plane)
        res = segment_all(plane, pred, embedding=emb, stain=stain)
        secs.append(time.perf_counter() - t0)
        stains.add(res.stain or res.message or "?")
        counts.append(E.match_counts(res.labels, labels))
        if ids:
            ious, masks = E.box_ious(pred, labels, ids)
            box += ious
            empty += [not m.any() for m in masks]
            point += E.point_scores(pred, labels, ids)
        if shown is None:
            shown = (masks if ids else None, res.labels)
    return {"box_iou": _mean(box), "box_empty": _mean(empty), "point_iou": _mean(point),
            **E.pooled(counts),
            "s_per_plane": float(np.median(secs)), "stain": ",".join(sorted(stains)),
            "_shown": shown}


def eval_source(source, models, cap: int | None, stain: str, overlay_dir) -> list[dict]:
    from napari_devosam.automatic.baseline import watershed_labels

    per_plane = None if cap is None else max(1, -(-cap // len(source.planes)))
    ids = [E.pick_objects(lab, per_plane) for _, lab in source.planes]
    base = {"source": source.name, "kind": source.kind, "planes": len(source.planes),
            "objects": sum(map(len, ids)), "truth_objects": source.n_objects}
    otsu_box = [v for (p, lab), i in zip(source.planes, ids, strict=True)
                for v in E.otsu_box_ious(p, lab, i)]
    ws = [watershed_labels(p) for p, _ in source.planes]
    rows = [dict(base, method="gauss+otsu", box_iou=_mean(otsu_box), point_iou=None,
                 **E.pooled([E.match_counts(E.otsu_labels(p), lab) for p, lab in source.planes])),
            dict(base, method="watershed", box_iou=None, point_iou=None,
                 **E.pooled([E.match_counts(w, lab) for w, (_, lab)
                             in zip(ws, source.planes, strict=True)]))]
    panels_done = False
    for label, (sam, note) in models.items():
        if sam is None:
            rows.append(dict(base, method=label, note=note))
            continue
        r = (L.evaluate(sam, source, ids) if isinstance(sam, L.LiteMedSAM)
             else eval_model(sam, source, ids, stain))
        shown = r.pop("_shown")
        rows.append(dict(base, method=label, note=note, **r))
        if overlay_dir and not panels_done:
            _source_overlay(overlay_dir, source, ids[0], shown, ws[0], label)
            panels_done = True
    _check_targets(rows, source.kind)
    return rows


def _source_overlay(folder, source, ids, shown, ws, label, size: int = 400):
    """Three panels of a ``size`` x ``size`` crop of the first plane around its objects."""
    from scipy import ndimage

    from real_overlays import panel, save_png

    plane, labels = source.planes[0]
    centre = ndimage.center_of_mass(labels > 0) if labels.any() else np.array(labels.shape) / 2
    r0, c0 = (int(min(max(c - size // 2, 0), max(n - size, 0)))
              for c, n in zip(centre, plane.shape[:2], strict=True))
    crop = (..., slice(r0, r0 + size), slice(c0, c0 + size))
    truth = np.where(np.isin(labels, ids), labels, 0)
    box_masks = None if shown[0] is None else shown[0][crop]
    path = save_png(Path(folder) / f"real_{source.name}.png",
                    [panel(plane[crop], truth[crop], box_masks),
                     panel(plane[crop], labels[crop], shown[1][crop]),
                     panel(plane[crop], labels[crop], ws[crop])])
    print(f"  overlay {path}: truth green; {label} box masks | {label} automatic | watershed")


def _check_targets(rows: list[dict], kind: str) -> None:
    """Issue 22's targets, on the fluorescence nuclear sources only."""
    if kind not in TARGET_KINDS:
        return
    otsu, ws = rows[0], rows[1]
    for r in rows[2:]:
        if r.get("box_iou") is None:
            continue
        box_ok = r["box_iou"] >= 0.80 and r["box_iou"] > otsu["box_iou"]
        auto_ok = r["f1"] >= 0.80 and r["f1"] > max(ws["f1"], otsu["f1"])
        r["target"] = f"box {'MET' if box_ok else 'no'}, auto {'MET' if auto_ok else 'no'}"


def eval_movies(models, stain: str, overlay_dir) -> list[dict]:
    """Objects per frame on the devolearn movies (unlabelled), with the watershed's count."""
    from napari_devosam import Predictor
    from napari_devosam.automatic.baseline import watershed_labels
    from napari_devosam.automatic.core import segment_all

    rows = []
    for which in R.MOVIES:
        try:
            movie = R.devolearn_movie(which)
        except R.SourceUnavailable as exc:
            print(f"skipped devolearn {which}: {exc}")
            continue
        frames = sorted({min(f, len(movie) - 1) for f in MOVIE_FRAMES})
        person = PERSON_COUNTS.get(which, {})
        ws = {f: watershed_labels(movie[f]) for f in frames}
        for label, (sam, _note) in models.items():
            if sam is None or isinstance(sam, L.LiteMedSAM):
                continue
            pred = Predictor(sam, cache_dir=None)
            res = {f: segment_all(movie[f], pred, stain=stain) for f in frames}
            rows += [{"movie": which, "frames": len(movie), "frame": f, "method": label,
                      "objects": res[f].n_objects, "stain": res[f].stain,
                      "message": res[f].message, "watershed": int(ws[f].max()),
                      "person": person.get(f)} for f in frames]
            if overlay_dir and not any(r.get("overlay") for r in rows if r["movie"] == which):
                from real_overlays import panel, save_png

                path = save_png(Path(overlay_dir) / f"real_devolearn_{which}.png",
                                [panel(movie[f], None, res[f].labels) for f in frames])
                rows[-1]["overlay"] = str(path)
                print(f"  overlay {path}: {label} automatic on frames {frames}")
    return rows


def _mean(values) -> float | None:
    return float(np.mean(values)) if len(values) else None


def _fmt(v, width=6) -> str:
    return f"{v:{width}.3f}" if isinstance(v, float) and np.isfinite(v) else f"{'-':>{width}}"


def print_table(rows: list[dict], movie_rows: list[dict]) -> None:
    print(f"\n{'source':9} {'obj':>4} {'method':14} {'box':>6} {'empty':>6} {'point':>6} "
          f"{'F1@.5':>6} {'mSA':>6} {'s/pl':>5}  stain / target / note")
    for r in rows:
        extra = " ".join(str(r[k]) for k in ("stain", "target", "note")
                         if r.get(k) and not (k == "note" and r.get("box_iou") is not None))
        print(f"{r['source']:9} {r['objects']:4d} {r['method']:14} {_fmt(r.get('box_iou'))} "
              f"{_fmt(r.get('box_empty'))} {_fmt(r.get('point_iou'))} {_fmt(r.get('f1'))} "
              f"{_fmt(r.get('msa'))} "
              f"{_fmt(r.get('s_per_plane'), 5)}  {extra}")
    if movie_rows:
        print(f"\n{'movie':9} {'frame':>5} {'method':14} {'objects':>7} {'watershed':>9} "
              f"{'person':>6}  stain")
        for r in movie_rows:
            person = "-" if r["person"] is None else str(r["person"])
            print(f"{r['movie']:9} {r['frame']:5d} {r['method']:14} {r['objects']:7d} "
                  f"{r['watershed']:9d} {person:>6}  {r['stain'] or r['message']}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sources", default=",".join(R.LABELLED),
                   help=f"comma-separated, of {', '.join(R.LABELLED)}")
    p.add_argument("--models", default=DEFAULT_MODELS,
                   help="model names for load_model, comma-separated ('' for none)")
    p.add_argument("--weights-file", action="append", default=[], metavar="[LABEL=]PATH",
                   help="also evaluate this checkpoint (e.g. a retrained .safetensors)")
    p.add_argument("--max-objects", type=int, default=120,
                   help="prompted objects per source (box and point)")
    p.add_argument("--planes", type=int, default=None,
                   help="use only the first N planes of each source")
    p.add_argument("--stain", default="auto", choices=("auto", "nuclei", "membrane"))
    p.add_argument("--no-movies", action="store_true", help="skip the devolearn movies")
    p.add_argument("--no-litemedsam", action="store_true",
                   help="skip the LiteMedSAM zero-shot baseline (real_litemedsam.py)")
    p.add_argument("--quick", action="store_true",
                   help=f"sources {QUICK_SOURCES}, 40 objects, one plane each, no movies")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--overlays", default=None, metavar="DIR", help="write PNG overlays here")
    p.add_argument("--json", default=None, metavar="PATH")
    p.add_argument("--zoom", default="auto", choices=("auto", "on", "off"),
                   help="small objects in zoomed views (default auto: on for bundled models)")
    args = p.parse_args(argv)
    global ZOOM
    ZOOM = args.zoom
    if args.quick:
        args.sources, args.max_objects, args.no_movies = QUICK_SOURCES, 40, True
        args.planes = 1
    import torch

    torch.set_num_threads(args.threads)
    info = machine()
    print(f"machine: {info['cpu']} x{info['cpu_count']}, torch {info['torch']}, "
          f"{args.threads} thread(s), load {info['load_avg_1m']:.1f}")
    models = load_models([m for m in args.models.split(",") if m], args.weights_file)
    if not args.no_litemedsam:
        models["litemedsam"] = L.load_or_reason()
    for label, (sam, note) in models.items():
        print(f"model {label}: {note if sam is None else 'loaded from ' + note}")
    rows, skipped = [], []
    for name in [s for s in args.sources.split(",") if s]:
        t0 = time.perf_counter()
        try:
            source = R.LABELLED[name]()
            source.planes = source.planes[:args.planes]
        except R.SourceUnavailable as exc:
            print(f"skipped {name}: {exc}")
            skipped.append({"source": name, "reason": str(exc)})
            continue
        rows += eval_source(source, models, args.max_objects, args.stain, args.overlays)
        print(f"{name}: {len(source.planes)} planes, {source.n_objects} truth objects, "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    movie_rows = [] if args.no_movies else eval_movies(models, args.stain, args.overlays)
    print_table(rows, movie_rows)
    write_json(args.json, {"machine": info, "args": vars(args), "rows": rows,
                           "movies": movie_rows, "skipped": skipped})
    return 0


if __name__ == "__main__":
    sys.exit(main())
