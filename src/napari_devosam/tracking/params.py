"""Every threshold of propagation and division detection, in one documented dataclass."""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, fields

import numpy as np


@dataclass
class PropagationParams:
    """Parameters of ``tracking.propagate.propagate``.

    Prompts (for plane ``k + 1`` from the result on plane ``k``):
      box_margin: the previous mask's bounding box grows by this fraction of its size on
        each side (objects move and grow), plus ``box_margin_px`` pixels.
      box_margin_px: pixels added on each side of the moved box, after ``box_margin``.
      use_mask_input: feed SAM's low-res logits of the previous step back as ``mask_input``
        (SAM's own refinement input; seeds and user-made objects have none: box + point only).
      use_point: add one positive point at the interior maximum of the previous mask (the
        pixel farthest from its border, by a Euclidean distance transform).
      motion: shift box and point by the object's last centroid displacement (constant
        velocity); 0 disables, 1 uses the full displacement.
      clip_margin_px: a new mask keeps only pixels inside its prompt box grown by this many
        pixels (SAM sometimes leaks into neighbouring cells).
      membrane_grow_px: on a membrane-stained plane, objects grow up to this many pixels to
        the membranes' midline, as in automatic segmentation (``tracking.membrane_growth``);
        0 keeps SAM's outlines.

    Decoding:
      decode_window: decode each object on a window of the image embedding around its box
        grown by ``clip_margin_px`` (``engine.window_decoder``), so that the decoder's cost
        follows the object's size, not the image's: for vit_b 3-7x less decoder time on a
        CPU. False decodes on the whole embedding: SAM's own masks.
      window_context: context around the box in the window, on each side: this fraction of
        the box's longer side, and at least ``window_context_cells``.
      window_context_cells: the least context on each side, in cells of the embedding grid
        (16 pixels of SAM's input each: 1/64 of the image's longer side for the released
        SAMs, 1/32 for embryo_tiny).

    Track ends (a track stops on the first plane where one of these holds; that plane gets
    no object and the previous plane is listed for review):
      min_area: fewer pixels than this (an empty mask always): the object vanished.
      min_area_fraction: the mask shrank below this fraction of the previous mask's area.
      min_inside_fraction: less than this fraction of the motion-shifted box lies inside the
        plane: the object left the image.
      min_iou_prev: IoU between the new mask and the motion-shifted previous mask below this.
      min_pred_iou: SAM's predicted IoU below this (0 disables the check).

    Confidence and review:
      review_below: objects with confidence ``min(predicted IoU, IoU with previous)`` below
        this are listed for review (divisions and track ends always are).

    Divisions (see ``tracking.divisions.split``):
      detect_divisions: False never splits a track.
      division_min_fraction: each of the two largest 8-connected parts of a new mask must
        hold at least this fraction of the mask's area, and ``division_min_area`` pixels.
      division_min_area: each daughter holds at least this many pixels (also the smallest
        stain-seed basin looked at).
      division_max_gap_px: parts farther apart than this many pixels are not two daughters
        but a leak into another object (the smaller part is dropped instead).
      division_min_iou_prev: for a division, ``min_iou_prev`` is replaced by this (daughters
        move apart: both together overlap their mother less than a cell its previous self).
      refine_daughters: decode each daughter again with its own box and point (one extra
        batched decode per plane with divisions); the mother's prompt outlines daughters
        poorly (on held-out lineage phantoms with embryo_tiny, daughter IoU 0.13-0.48 ->
        0.56-0.93). A refined pair that loses a daughter keeps the split parts instead.
      division_seeds: also look for divisions inside one connected mask: two stain seeds in
        it (``tracking.divisions.stain_seeds``) whose halves SAM outlines as two cells.
      division_max_overlap: such a split is kept only when SAM's masks for the two halves,
        prompted separately, overlap less than this (IoU); more means SAM sees one cell.
      division_search_radius: a track about to end looks for two daughters among the free
        stain seeds within this many equivalent radii (``sqrt(area / pi)``) of its
        motion-shifted previous mask's centroid (daughters push their neighbours away).
      redetect_lost: a track about to end that found no daughters asks SAM about the nearest
        free stain seed within that reach and goes on with that cell, held to
        ``division_min_iou_prev`` and listed for review ("found again"); also backward and
        along Z.
      free_sisters: a track that went on as one cell divides when a stain seed no object
        covers lies within ``division_search_radius`` equivalent radii of its previous mask
        and flanks it (``tracking.divisions.free_cells``): the free cell, outlined by SAM, is the
        second daughter.
      free_sister_between: how squarely the track's previous mask must lie between the kept
        cell and the free seed: its centroid projects onto the segment joining them at least
        this fraction of the segment's length from either end (a cell that did not divide
        stays near 0; at most 0.5).
    """

    box_margin: float = 0.15
    box_margin_px: float = 3.0
    use_mask_input: bool = True
    use_point: bool = True
    motion: float = 1.0
    clip_margin_px: float = 6.0
    membrane_grow_px: int = 6
    decode_window: bool = True
    window_context: float = 0.0
    window_context_cells: int = 3
    min_area: int = 20
    min_area_fraction: float = 0.25
    min_inside_fraction: float = 0.5
    min_iou_prev: float = 0.3
    min_pred_iou: float = 0.3
    review_below: float = 0.7
    detect_divisions: bool = True
    division_min_fraction: float = 0.2
    division_min_area: int = 30
    division_max_gap_px: float = 12.0
    division_min_iou_prev: float = 0.1
    refine_daughters: bool = True
    division_seeds: bool = True
    division_max_overlap: float = 0.5
    division_search_radius: float = 2.0
    redetect_lost: bool = True
    free_sisters: bool = True
    free_sister_between: float = 0.2

    def __post_init__(self):
        self._check_types()
        for name in ("box_margin", "box_margin_px", "motion", "clip_margin_px", "membrane_grow_px",
                     "division_max_gap_px", "division_search_radius", "window_context",
                     "window_context_cells"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("min_area_fraction", "min_inside_fraction", "min_iou_prev", "min_pred_iou",
                     "review_below", "division_min_fraction", "division_min_iou_prev",
                     "division_max_overlap", "free_sister_between"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be within [0, 1], got {getattr(self, name)}")
        if self.free_sister_between > 0.5:
            raise ValueError("free_sister_between above 0.5 leaves no room between the cells")
        if self.division_min_fraction > 0.5:
            raise ValueError("division_min_fraction above 0.5 can never hold for two parts")

    def _check_types(self) -> None:
        """Every field holds its default's kind: True/False, a whole number, or a finite
        number (NaN and infinity pass no comparison, so they are refused here)."""
        for f in fields(self):
            value, kind = getattr(self, f.name), type(f.default)
            if kind is bool:
                ok = isinstance(value, (bool, np.bool_))
                want = "True or False"
            elif kind is int:
                ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
                want = "a whole number"
            else:
                ok = (isinstance(value, numbers.Real) and not isinstance(value, bool)
                      and math.isfinite(value))
                want = "a finite number"
            if not ok:
                raise ValueError(f"{f.name} must be {want}, got {value!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> PropagationParams:
        """Parameters from a dict; unknown keys raise ``ValueError``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown propagation parameter(s): {', '.join(unknown)}")
        return cls(**values)
