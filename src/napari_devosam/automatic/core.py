"""``segment_all``: every cell of a plane at once; ``iter_segment_stack`` for stacks.

Modes (``MODES``): ``"seeded"`` (default): seeds from the stain (``seeds.py``: membrane
interiors or nuclei blobs; ``stain="auto"`` decides, rule in ``seeds.py``), one prompt each,
decoded in batches (``seeded.py``); ``"grid"``: SAM's automatic mask generator, fast
(``grid.py``). Both end in ``postprocess.proposals_to_labels`` (one object per pixel by
logits, holes filled, objects below ``min_area`` pixels removed; seeded mode drops
box-shaped masks first, and on nuclei keeps the whole nucleus over its fragments). Seeded
masks' uncertain edges are decided by the plane's intensities (``engine.mask_refine``) by the
``Predictor``'s rule (``mask_refine.wanted``: bundled models with zoom on).

A plane with no detectable embryo (or NaN-only, or constant) gives empty labels and a
``message``, never an error; such a plane is not even embedded.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field

import numpy as np

from napari_devosam.automatic.postprocess import (
    MEMBRANE_GROW_PX,
    MIN_AREA,
    grow_to_membranes,
    size_filter,
)

MODES = ("seeded", "grid")


@dataclass
class AutoResult:
    """Automatic segmentation of one plane.

    ``labels``: ``(H, W)`` int32, 0 background, ids ``1..n`` by decreasing score.
    ``scores``: ``{id: predicted IoU}``. ``prompts``: one dict per id (in id order):
    ``point`` (row, col), ``box`` (row0, col0, row1, col1) or None, ``source`` (membrane,
    nuclei, neighbour, grid), ``score``. ``stain``: the stain used (seeded mode).
    ``message``: why the result is empty (no embryo, NaN plane, ...), else None.
    ``stain_note``: one line on which stain was used and why (decided from the image,
    uncertain, or given). ``diameter``: the cell (membrane) or nucleus diameter in pixels
    the seeds were found with, ``diameter_source`` ``"given"`` or ``"estimated"``.
    ``saturated``: the fraction of the objects' pixels at the dtype's largest value (set by
    ``iter_segment_stack``; 0 for float planes): outlines inside a saturated region are guesses.
    ``prepared``: what was done to the plane before it was read (``PlaneAnalysis.prepared``).
    """

    labels: np.ndarray
    scores: dict[int, float] = field(default_factory=dict)
    prompts: list[dict] = field(default_factory=list)
    mode: str = "seeded"
    stain: str | None = None
    message: str | None = None
    stain_note: str | None = None
    diameter: float | None = None
    diameter_source: str | None = None
    saturated: float = 0.0
    prepared: tuple[str, ...] = ()

    @property
    def size_note(self) -> str | None:
        """One line on the cell size used, e.g. ``"cell diameter: 50 px (estimated from the
        image; --diameter to override)"``; None when no stain seeds were looked for."""
        if self.diameter is None:
            return None
        how = ("given with --diameter" if self.diameter_source == "given"
               else "estimated from the image; --diameter to override")
        return f"cell diameter: {self.diameter:.0f} px ({how})"

    @property
    def n_objects(self) -> int:
        return len(self.scores)

    def masks(self) -> np.ndarray:
        """``(n, H, W)`` bool, object ``i + 1`` in row ``i``."""
        ids = np.arange(1, self.n_objects + 1)
        return self.labels[None] == ids[:, None, None]


def grid_note(sam) -> str | None:
    """Why grid mode will find little with ``sam`` (a sentence), or None: the bundled models
    (small encoders, ``engine.zoom.wanted``) were trained on box and seed prompts, and their
    single-click masks rarely pass SAM's predicted-IoU and stability thresholds. Measured on
    real planes with ``embryo``: DSB2018 nuclei 0 objects (F1 0.11 even at thresholds
    0.5 / 0.8), DevoLearn membrane frame 30: 0 objects."""
    from napari_devosam.engine.zoom import wanted

    if not wanted(sam):
        return None
    return ("grid mode (SAM's automatic mask generator) finds next to nothing with a bundled "
            "model on real images; use seeded mode (the default), or an official or "
            "microscopy SAM checkpoint (vit_b, vit_b_lm) for grid mode")


def _sam_and_cache(model):
    """``(sam, cache, normalization)`` from a ``Predictor`` or a ``Sam``."""
    sam = getattr(model, "sam", model)
    return sam, getattr(model, "cache", None), getattr(model, "normalization", None)


def _filter_to_embryo(props, embryo: np.ndarray):
    """Grid mode with pixels: drop proposals mostly (>50%) outside the embryo, or covering
    more than half of it (the embryo itself, or the background)."""
    total = max(int(embryo.sum()), 1)
    out = []
    for q in props:
        r0, c0, r1, c1 = q.box
        inside = int(np.count_nonzero(q.mask & embryo[r0:r1, c0:c1]))
        if inside >= 0.5 * q.area and q.area <= 0.5 * total:
            out.append(q)
    return out


def segment_all(source, model, *, mode: str = "seeded", stain: str = "auto",
                embedding=None, previous_labels=None, grid_params=None,
                min_area: int | None = None, min_score: float = 0.0,
                membrane_grow_px: int = MEMBRANE_GROW_PX,
                diameter: float | None = None, second_round: bool = True) -> AutoResult:
    """Segment every object of one plane.

    Arguments:
      source: the plane, ``(H, W)`` of any real dtype (RGB is averaged for the seeds), or a
        ``PlaneEmbedding`` (grid mode, or seeded mode with ``previous_labels`` only).
      model: a ``Predictor`` (its cache and normalisation are used) or a ``segment_anything``
        ``Sam``.
      mode: ``"seeded"`` or ``"grid"``. stain: ``"membrane"``, ``"nuclei"`` or ``"auto"``.
      embedding: the plane's ``PlaneEmbedding`` when already computed (else embedded here
        through the cache: seconds on a CPU).
      previous_labels: ``(H, W)`` int labels of the neighbouring plane: their objects seed
        where the stain gave no seed (``neighbour_seeds.merge_neighbour_seeds``); on a nuclear plane
        only when the stain gave no seed at all (nuclei move between frames).
      grid_params: ``grid.GridParams`` for grid mode.
      min_area: smallest object kept, pixels (None: ``postprocess.size_filter``, from the
        cell size; 30 for the seeds). min_score: smallest predicted IoU kept.
      membrane_grow_px: membrane stain: objects grow up to this many pixels to the
        membranes' midline (``postprocess.grow_to_membranes``); 0 keeps SAM's outlines.
      diameter: the cells' (membrane) or nuclei's diameter in pixels; None estimates it
        from the plane (``scale.py``, membrane interiors). It scales the seed detection and
        the size filter.
      second_round: nuclear stain: look again where no mask lies (``automatic.residual``).

    Returns an ``AutoResult``. Raises ``ValueError`` for an unknown mode or stain, a bad
    diameter or plane size (``automatic.limits``), or seeded mode without pixels or labels.
    """
    from napari_devosam.automatic import seeds as S
    from napari_devosam.automatic.limits import check_diameter, check_plane_size
    from napari_devosam.automatic.neighbour_seeds import merge_neighbour_seeds, seeds_from_labels
    from napari_devosam.engine.embedding_cache import PlaneEmbedding

    _check_choices(mode, stain)
    seed_area = MIN_AREA if min_area is None else min_area
    plane = None
    if isinstance(source, PlaneEmbedding):
        embedding = source
    else:
        plane = np.asarray(source)
    if plane is None and mode == "seeded" and previous_labels is None:
        raise ValueError("seeded mode needs the plane's pixels (or previous_labels)")
    shape = tuple(plane.shape[:2]) if plane is not None else tuple(embedding.original_size)
    check_plane_size(shape)
    check_diameter(diameter, shape)
    analysis = S.analyse_plane(plane, stain, seed_area) if plane is not None else None
    empty = np.zeros(shape, dtype=np.int32)
    if analysis is not None and not analysis.found \
            and (previous_labels is None or analysis.blank):  # a blank plane copies nothing
        return AutoResult(empty, mode=mode, message=analysis.message)
    seeds = S.Seeds()
    stain_used = analysis.stain if analysis is not None and analysis.found else None
    note = analysis.stain_note if stain_used is not None else None
    if mode == "seeded":
        if analysis is not None:
            seeds = S.stain_seeds(analysis, seed_area, diameter)
        if previous_labels is not None and not (stain_used == "nuclei" and len(seeds)):
            # Nuclei move between frames: a neighbour's nucleus whose box holds none of this
            # plane's seeds is mostly a moved one, and its prompt cut a fragment between
            # nuclei that seeded the next plane in turn (DevoLearn nuclear frames 27-30:
            # 95/123/153/137 objects against 95/104/127/101 planes done alone).
            seeds = merge_neighbour_seeds(seeds, seeds_from_labels(previous_labels, seed_area))
        if len(seeds) == 0:
            msg = "no seeds found: no embryo or cells detected on this plane"
            return AutoResult(empty, mode=mode, stain=stain_used, message=msg,
                              stain_note=note, diameter=seeds.diameter,
                              diameter_source=seeds.diameter_source)
    keep_area = size_filter(min_area, seeds.diameter)
    labels, scores, prompts = _decode(plane, model, embedding, mode, seeds, grid_params,
                                      analysis, keep_area, min_score, second_round)
    if stain_used == "membrane":
        labels = grow_to_membranes(labels, analysis.smooth, analysis.embryo, membrane_grow_px)
    message = None if scores else "SAM returned no object for this plane"
    return AutoResult(labels, scores, prompts, mode, stain_used, message, note,
                      seeds.diameter, seeds.diameter_source,
                      prepared=analysis.prepared if analysis is not None else ())


def _check_choices(mode: str, stain: str) -> None:
    """``ValueError`` naming the choices for an unknown ``mode`` or ``stain``."""
    from napari_devosam.automatic.seeds import STAINS

    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}: choose one of {', '.join(MODES)}")
    if stain not in STAINS:
        raise ValueError(f"unknown stain {stain!r}: choose one of {', '.join(STAINS)}")


def _decode(plane, model, embedding, mode, seeds, grid_params, analysis, min_area, min_score,
            second: bool = True):
    from napari_devosam.automatic.decoding import PromptDecoder
    from napari_devosam.automatic.grid import grid_proposals
    from napari_devosam.automatic.postprocess import (
        dedupe,
        dedupe_nested,
        drop_box_shaped,
        proposals_to_labels,
    )
    from napari_devosam.automatic.residual import second_round
    from napari_devosam.automatic.seeded import seeded_in_views, seeded_proposals
    from napari_devosam.engine.embeddings import embed_plane
    from napari_devosam.engine.mask_refine import gray

    sam, cache, normalization = _sam_and_cache(model)
    zooms = plane is not None and mode == "seeded" and _zooms(model, sam)
    prepared = _prepared_plane(plane, analysis)
    if prepared is not plane and zooms:  # a cheap encoder: the whole plane prepared too
        embedding = embed_plane(sam, prepared, None, normalization)
    elif embedding is None:
        embedding = embed_plane(sam, plane, cache, normalization)
    dec = PromptDecoder(sam, embedding)
    if mode == "grid":
        props = grid_proposals(dec, grid_params)
        props = [q for q in props if q.score >= min_score]
        if analysis is not None and analysis.embryo is not None:
            props = _filter_to_embryo(props, analysis.embryo)
    else:
        if plane is not None and _refines(model, sam, zooms):
            dec.pixels = gray(prepared)
        def decode(some):
            if zooms:
                found = seeded_in_views(dec, prepared, normalization, some, min_score)
            else:
                found = seeded_proposals(dec, some, min_score)
            return drop_box_shaped(found, dec.plane_shape)

        nuclei = analysis is not None and analysis.found and analysis.stain == "nuclei"
        props = decode(seeds)
        props = dedupe_nested(props, diameter=seeds.diameter) if nuclei else dedupe(props)
        if nuclei and second and seeds.diameter:
            props += second_round(props, analysis, seeds.diameter, decode)
    return proposals_to_labels(props, dec.plane_shape, min_area)


def _prepared_plane(plane, analysis):
    """``plane`` as the analysis read it, marks drawn into it painted over
    (``PlaneAnalysis.marks``) and less the uneven background it took off (``ramp``), for
    what SAM sees and for the mask refinement: under a ramp as bright as the nuclei a
    view's background rose across it and masks leaked toward the bright side (DSB2018 mSA
    0.350 against 0.472 without the ramp). With a cheap encoder (the zooming bundled models)
    the whole plane is embedded levelled as well (CTC CHO's nuclei are decoded there: mSA
    0.223 against 0.478 without the ramp); vit_b/l/h keep the plane's own embedding. Colour
    planes, and planes with neither, are returned as they are."""
    if plane is None or analysis is None or np.ndim(plane) != 2 or (
            analysis.ramp is None and analysis.marks is None):
        return plane
    from napari_devosam.automatic.burned_in import painted_over

    out = np.asarray(plane, dtype=np.float32)
    out = out if analysis.marks is None else painted_over(out, analysis.marks)
    return out if analysis.ramp is None else out - analysis.ramp


def _zooms(model, sam) -> bool:
    """Small seeds in zoomed views: the ``Predictor``'s ``zoom`` when given one, else
    ``engine.zoom.wanted`` (the bundled models)."""
    from napari_devosam.engine.zoom import wanted

    zoom = getattr(model, "zoom", None)
    return wanted(sam) if zoom is None else bool(zoom)


def _refines(model, sam, zooms: bool) -> bool:
    """Seeded masks refined by the plane's intensities (``engine.mask_refine``): the
    ``Predictor``'s ``refine`` when given one, else ``mask_refine.wanted`` (bundled models
    with zoom on), the ``Predictor``'s own rule."""
    from napari_devosam.engine.mask_refine import wanted

    refine = getattr(model, "refine", None)
    return wanted(sam, zooms) if refine is None else bool(refine)


def neighbour_index(index: tuple[int, ...]) -> tuple[int, ...] | None:
    """The plane before ``index`` along the last leading axis (Z of T:Z, T of a time-lapse),
    or None for the first plane or a 2D image."""
    if not index or index[-1] == 0:
        return None
    return (*index[:-1], index[-1] - 1)


def iter_segment_stack(stack, model, planes=None, *, neighbour: bool = True, **kwargs
                       ) -> Generator[tuple[int, int], None, dict[tuple, AutoResult]]:
    """``segment_all`` on every plane of ``stack`` (leading T/Z axes, then ``(Y, X)``); a
    generator yielding ``(done, total)`` after each plane, returning ``{index: AutoResult}``.

    ``planes``: the plane indices to do (default all, C order). ``neighbour``: seed each plane
    also from the previous plane's result along the last leading axis (when it was done
    before). ``kwargs`` go to ``segment_all``. With ``stain="auto"`` (the default) and a
    stack of several planes, the stain is decided once for the whole stack
    (``automatic.stack_stain``, on planes sampled from all of it, also when only some are
    done) and every plane uses it. Closing the generator stops between planes; nothing is
    returned or written then.
    """
    from napari_devosam.automatic.report import saturation
    from napari_devosam.engine.stacks import plane_indices

    every = list(plane_indices(stack))
    planes = list(every if planes is None else planes)
    total = len(planes)
    results: dict[tuple, AutoResult] = {}
    yield 0, total
    if len(every) > 1 and total:
        from napari_devosam.automatic.stack_stain import run_stain

        area = kwargs.get("min_area")
        decision = run_stain(lambda i: np.asarray(stack[i]), every,
                             kwargs.get("stain", "auto"), MIN_AREA if area is None else area)
        kwargs["stain"] = "auto" if decision is None else decision
    for done, index in enumerate(planes, start=1):
        prev = results.get(neighbour_index(index)) if neighbour else None
        previous_labels = prev.labels if prev is not None and prev.n_objects else None
        plane = np.asarray(stack[index])
        results[index] = segment_all(plane, model, previous_labels=previous_labels, **kwargs)
        results[index].saturated = saturation(plane, results[index].labels)
        yield done, total
    return results
