"""Two programs on one annotation store (new-user trial 19: the viewer held the store while
``devosam import-tracks`` replaced it; the viewer's next edit wrote a ``store.json`` naming
plane files the import had removed, and the store was lost on the next read). A write after
another program's is now refused with ``StoreChangedError`` and changes nothing on disk."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from napari_devosam.annotation.store import AnnotationStore
from napari_devosam.annotation.store_files import StoreChangedError


def _disk(center, r=6, shape=(40, 50)):
    rr, cc = np.mgrid[:shape[0], :shape[1]]
    return (rr - center[0]) ** 2 + (cc - center[1]) ** 2 <= r ** 2


def _commit_in_another_process(folder) -> None:
    """A separate Python process (as the CLI would be) opens the store and commits."""
    script = textwrap.dedent(f"""
        import numpy as np
        from napari_devosam.annotation.store import AnnotationStore
        s = AnnotationStore({str(folder)!r}, (2, 40, 50))
        rr, cc = np.mgrid[:40, :50]
        s.commit((1,), [(rr - 30) ** 2 + (cc - 10) ** 2 <= 25])
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)


def test_a_write_after_another_programs_is_refused_and_the_store_stays_readable(tmp_path):
    folder = tmp_path / "embryo.devosam"
    viewer = AnnotationStore(folder, (2, 40, 50))
    viewer.commit((0,), [_disk((20, 25))])
    _commit_in_another_process(folder)

    with pytest.raises(StoreChangedError, match="changed by another program"):
        viewer.commit((0,), [_disk((10, 10))])
    assert sorted(viewer.objects) == [1]  # the refused change is not kept in memory either

    again = AnnotationStore(folder, (2, 40, 50))  # what is on disk: both programs' first work
    assert sorted(again.objects) == [1, 2]
    assert again.labels[0, 20, 25] == 1 and again.labels[1, 30, 10] == 2
    again.commit((0,), [_disk((10, 10))])  # a program that read the store as it is writes
    assert sorted(AnnotationStore(folder, (2, 40, 50)).objects) == [1, 2, 3]


def test_every_kind_of_change_is_refused_after_another_programs_write(tmp_path):
    """Commits, deletes, edits, undo and track changes all write through one door."""
    folder = tmp_path / "embryo.devosam"
    viewer = AnnotationStore(folder, (2, 40, 50))
    viewer.commit((0,), [_disk((20, 25)), _disk((8, 8))])
    _commit_in_another_process(folder)
    changes = [
        lambda s: s.delete(1),
        lambda s: s.apply_edit((0,), (np.array([0]), np.array([0])), np.array([1])),
        lambda s: s.undo(),
        lambda s: s.change_tracks({1: {"track": 7}}),
    ]
    for change in changes:
        with pytest.raises(StoreChangedError):
            change(viewer)
    assert sorted(AnnotationStore(folder, (2, 40, 50)).objects) == [1, 2, 3]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into any folder")
def test_reading_a_store_in_a_read_only_folder_needs_no_lock_file(tmp_path):
    folder = tmp_path / "embryo.devosam"
    AnnotationStore(folder, (2, 40, 50)).commit((0,), [_disk((20, 25))])
    (folder / ".store.lock").unlink(missing_ok=True)
    folder.chmod(0o555)
    try:
        assert sorted(AnnotationStore(folder, (2, 40, 50)).objects) == [1]
    finally:
        folder.chmod(0o755)


def test_a_store_moved_away_while_open_is_not_written_over(tmp_path):
    """New-user trial 21: the folder was moved while a program held it; its next commit
    wrote a store.json naming plane files that were gone, and the store was lost."""
    folder = tmp_path / "embryo.devosam"
    viewer = AnnotationStore(folder, (2, 40, 50))
    viewer.commit((0,), [_disk((20, 25))])
    folder.rename(tmp_path / "moved.devosam")
    with pytest.raises(StoreChangedError, match="gone"):
        viewer.commit((0,), [_disk((10, 10))])
    assert not (folder / "store.json").exists()
    assert sorted(AnnotationStore(tmp_path / "moved.devosam", (2, 40, 50)).objects) == [1]
