"""What an automatic run says it used: the stain, the cell size, how the planes were
prepared, saturation and borrowed seeds (``summary_lines``), one line each, for the CLI's
stderr and the Segment all panel's message."""

from __future__ import annotations

import numpy as np

from napari_devosam.utils.text import count


def stain_against(results: dict):
    """The first given stain of ``{plane: AutoResult}`` that the image reads against
    (``stain.given``'s ``contradicted``), a ``StainDecision``; None when there is none. What
    the CLI and the panel warn of."""
    return next((r.stain for r in results.values()
                 if getattr(r.stain, "contradicted", False)), None)


SATURATED = 0.2  # objects' pixels at the dtype's largest value from which a run says so


def saturation(plane: np.ndarray, labels: np.ndarray) -> float:
    """The fraction of the objects' pixels (``labels`` > 0) of a ``(H, W)`` integer ``plane``
    at its dtype's largest value (255 for uint8); 0 for float, colour or empty results."""
    plane = np.asarray(plane)
    inside = np.asarray(labels) > 0
    if plane.ndim != 2 or not np.issubdtype(plane.dtype, np.integer) or not inside.any():
        return 0.0
    return float(np.count_nonzero(plane[inside] == np.iinfo(plane.dtype).max) / inside.sum())


def summary_lines(results: dict) -> list[str]:
    """``{plane: AutoResult}`` -> what the run used, one line each: the stain and why (one
    plane, or a stack's one decision: its note; several plane decisions: how many planes got
    each stain, and the note of the first uncertain one), the cell diameter (one plane:
    its value; several: the range), what was done to the planes before they were read (a
    background ramp, marks drawn into them), saturation (``SATURATED`` or more of a plane's
    objects' pixels at the brightest value), and the objects seeded from a neighbouring
    plane's (a plane segmented alone can differ: a new-user trial compared a stack run with
    ``--plane`` and found different counts, with nothing said)."""
    done = [r for r in results.values() if r.stain is not None]
    lines = []
    notes = {r.stain_note for r in done}
    if len(done) == 1 or (len(notes) == 1 and "stack" in str(next(iter(notes)))):
        lines.append(done[0].stain_note or f"stain: {done[0].stain}")
    elif done:
        stains = sorted({str(r.stain) for r in done})
        per = ", ".join(f"{s} on {count(sum(str(r.stain) == s for r in done), 'plane')}"
                        for s in stains)
        how = ("given with --stain" if all("given" in (r.stain_note or "") for r in done)
               else "decided from each plane; --stain to override")
        lines.append(f"stain: {per} ({how})")
        unsure = [r.stain_note for r in done if r.stain_note and "uncertain" in r.stain_note]
        if unsure:
            lines.append(f"{count(len(unsure), 'plane')} uncertain, e.g. {unsure[0]}")
        against = [r for r in done if getattr(r.stain, "contradicted", False)]
        if against:
            lines.append(f"{count(len(against), 'plane')} read as the other stain, e.g. "
                         f"{against[0].stain_note}")
    sized = [r for r in done if r.diameter is not None]
    if len(sized) == 1:
        lines.append(sized[0].size_note)
    elif sized:
        d = [r.diameter for r in sized]
        how = ("given with --diameter" if sized[0].diameter_source == "given"
               else "estimated per plane; --diameter to override")
        span = f"{min(d):.0f}" if round(min(d)) == round(max(d)) else \
            f"{min(d):.0f}-{max(d):.0f}"
        lines.append(f"cell diameter: {span} px ({how})")
    borrowed = [sum(p.get("source") == "neighbour" for p in r.prompts)
                for r in results.values()]
    if any(borrowed):
        planes = count(sum(map(bool, borrowed)), "plane")
        lines.append(f"{count(sum(borrowed), 'object')} on {planes} seeded from the previous "
                     "plane's objects where the stain found no cell (a plane segmented alone, "
                     "--plane, can differ)")
    lines += _prepared_lines(results)
    saturated = [r.saturated for r in results.values() if r.saturated >= SATURATED]
    if saturated:
        where = "" if len(results) == 1 else f" on {count(len(saturated), 'plane')}"
        lines.append(f"saturated{where}: up to {max(saturated):.0%} of the objects' pixels at "
                     "the brightest value; outlines there are guesses (lower the gain or "
                     "exposure)")
    return lines


def _prepared_lines(results: dict) -> list[str]:
    """``"image: background ramp taken off"``, or per kind how many planes, for what was done
    to the planes before they were read (``AutoResult.prepared``; a new-user trial could not
    tell whether the background had been levelled)."""
    done = [r.prepared for r in results.values()]
    if len(done) == 1:
        return [f"image: {'; '.join(done[0])}"] if done[0] else []
    kinds = dict.fromkeys(p.split(" (")[0] for d in done for p in d)
    lines = []
    for kind in kinds:
        n = sum(any(p.startswith(kind) for p in d) for d in done)
        lines.append(f"image: {kind} on {count(n, 'plane')} of {len(done)}")
    return lines
