"""The undo/redo history of an ``AnnotationStore``: the actions done and undone, per session.

An action is whatever the store's content records (``committed.CommittedObjects``); the
history only orders them. It is not stored: reopening a store starts an empty history.
"""

from __future__ import annotations

from collections.abc import Callable


class History:
    """Two stacks of actions. ``record`` a new action (the redo stack is dropped); ``step``
    moves the last action from one stack to the other after ``replay`` succeeded."""

    def __init__(self) -> None:
        self._done: list[dict] = []
        self._undone: list[dict] = []

    @property
    def can_undo(self) -> bool:
        return bool(self._done)

    @property
    def can_redo(self) -> bool:
        return bool(self._undone)

    @property
    def undo_count(self) -> int:
        """How many actions ``undo`` can take back."""
        return len(self._done)

    def record(self, action: dict) -> None:
        """A new action was done: it is the next to undo, and nothing can be redone."""
        self._done.append(action)
        self._undone.clear()

    def step(self, forward: bool, replay: Callable[[dict, bool], None]) -> dict | None:
        """Undo (``forward=False``) or redo the last action: ``replay(action, forward)``, then
        move it to the other stack. Returns the action, or None when there is none. When
        ``replay`` raises, both stacks stay as they were."""
        source, target = (self._undone, self._done) if forward else (self._done, self._undone)
        if not source:
            return None
        action = source[-1]
        replay(action, forward)
        target.append(source.pop())
        return action

    def clear(self) -> None:
        self._done.clear()
        self._undone.clear()


_KIND_TEXT = {"commit": "a commit", "delete": "a deletion", "edit": "a brush or eraser edit",
              "batch": "a change over several planes (a run, an import or Segment all)",
              "records": "a track edit"}


def step_text(word: str, summary: dict) -> str:
    """One line saying what an undo or redo (``word``) took back or brought back:
    ``summary`` is ``AnnotationStore.undo``'s or ``redo``'s ``{"kind", "plane", "ids"}``."""
    from napari_devosam.utils.text import count

    what = _KIND_TEXT.get(summary.get("kind"), "the last change")
    n = len(summary.get("ids") or ())
    objects = f" ({count(n, 'object')})" if n else ""
    return f"{word.capitalize()}: {what}{objects} {'undone' if word == 'undo' else 'redone'}"
