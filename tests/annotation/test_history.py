

def test_step_text_says_what_an_undo_or_redo_changed():
    from napari_devosam.annotation.history import step_text

    assert step_text("undo", {"kind": "commit", "plane": (0,), "ids": [3, 4]}) == \
        "Undo: a commit (2 objects) undone"
    assert step_text("redo", {"kind": "batch", "plane": (0,), "ids": [1]}) == \
        "Redo: a change over several planes (a run, an import or Segment all) (1 object) redone"
    assert step_text("undo", {"kind": "edit", "plane": (0,), "ids": []}) == \
        "Undo: a brush or eraser edit undone"
