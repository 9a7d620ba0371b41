"""The Lineage dock's edits: what each needs selected, its key, and the core call it makes.

The selection is a list of at most two tracks in click order: ``A`` (first) and ``B``
(second); a one-track edit acts on the last track clicked. The frame is the frame the viewer
shows along the tracked axis (a click on the tree moves there). Every call goes to
``tracking.lineage``: checked, then one undo step of the store, or refused with a
``LineageError`` of one line.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Edit:
    name: str  # method-like id
    label: str  # button text
    key: str  # Qt key sequence
    needs: int  # tracks that must be selected
    tip: str


EDITS: tuple[Edit, ...] = (
    Edit("set_parent", "A is B's mother", "P", 2,
         "make B a daughter of A (a division): B must start after A ends"),
    Edit("clear_parent", "No mother", "Shift+P", 1,
         "clear the last clicked track's mother (undo a false division)"),
    Edit("split", "Split here", "S", 1,
         "the last clicked track gets a new id from the frame shown on"),
    Edit("join", "Join (B continues A)", "J", 2,
         "B's objects take A's id: B must start after A ends"),
    Edit("swap", "Swap from here", "W", 2,
         "A and B trade identities from the frame shown on (an identity switch)"),
    Edit("delete", "Delete from here", "Delete", 1,
         "delete the last clicked track's objects from the frame shown on"),
    Edit("delete_all", "Delete + descendants", "Shift+Delete", 1,
         "delete from the frame shown on, and every descendant track"),
)


def core_call(name: str, tracks: list[int], frame: int, axis: int):
    """``(description, fn(store) -> result)`` of edit ``name`` on the selection ``tracks``
    (click order) at ``frame``; ``ValueError`` when the selection does not fit."""
    from napari_devosam.tracking import lineage as core

    edit = next(e for e in EDITS if e.name == name)
    if len(tracks) < edit.needs:
        raise ValueError(f"'{edit.label}' needs {edit.needs} selected track(s): click a "
                         "track, then Shift-click a second one")
    last = tracks[-1]
    a, b = (tracks[0], tracks[1]) if len(tracks) > 1 else (last, last)
    calls = {
        "set_parent": (f"track {a} is the mother of {b}",
                       lambda s: core.set_parent(s, b, a, axis=axis)),
        "clear_parent": (f"track {last} has no mother",
                         lambda s: core.set_parent(s, last, None, axis=axis)),
        "split": (f"track {last} split at frame {frame}",
                  lambda s: core.split_track(s, last, frame, axis=axis)),
        "join": (f"track {b} continues {a}", lambda s: core.join_tracks(s, a, b, axis=axis)),
        "swap": (f"tracks {a} and {b} swapped from frame {frame}",
                 lambda s: core.swap_tracks(s, a, b, frame, axis=axis)),
        "delete": (f"track {last} deleted from frame {frame}",
                   lambda s: core.delete_track(s, last, frame, False, axis=axis)),
        "delete_all": (f"track {last} and its descendants deleted from frame {frame}",
                       lambda s: core.delete_track(s, last, frame, True, axis=axis)),
    }
    return calls[name]
