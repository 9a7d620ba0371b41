"""The Propagate panel's messages and its "Export tracks (CTC)..." action (private)."""

from __future__ import annotations

import importlib.util

from napari.utils.notifications import show_error, show_info, show_warning


def nothing_added(result) -> str:
    """Why a run added no object, for a notification: how its tracks ended."""
    from collections import Counter

    reasons = Counter(" ".join(w for w in reason.split() if not w.replace(".", "").isdigit())
                      for _, reason in result.ended.values())
    why = ", ".join(f"{n} {r}" for r, n in reasons.most_common()) or "no track reached a plane"
    return (f"Propagation added no object ({why}). Committed objects are never overwritten: "
            "to redo a track, correct its own object (brush/eraser keep its track) and press "
            "Propagate from here, or delete the objects in its way first.")


def export_tracks(w, folder, has_axis: bool, axis: int, along_z: bool, button) -> bool:
    """Write the committed tracks of the annotator ``w``'s line of planes through its current
    plane along ``axis`` into ``folder``, as they are, on the store thread
    (``tracking.store_tracks.export_store_tracks``: the CTC result, tracks.csv, and
    tracks.geff when the optional ``geff`` package is installed); ``button`` is disabled
    meanwhile. A notification says what was written, or why nothing was. False when it could
    not start (no stack or store, or ``folder`` would overwrite the image file)."""
    from napari_devosam.tracking.store_tracks import export_store_tracks
    from napari_devosam.tracking.track_files import check_result_folder, writes_name
    from napari_devosam.utils.paths import output_folder

    if w.store is None or not has_axis or w.current_plane is None:
        show_warning("Exporting tracks needs an image with a T or Z axis and its committed "
                     "objects.")
        return False
    source = getattr(getattr(w.image_layer, "source", None), "path", None)
    try:
        output_folder(folder, inputs=[source] if source else [], writes=writes_name)
        check_result_folder(folder)
    except ValueError as exc:
        show_error(str(exc))
        return False
    button.setEnabled(False)
    geff = importlib.util.find_spec("geff") is not None  # optional: napari-devosam[tracking]
    files = "CTC format, tracks.csv and tracks.geff" if geff else "CTC format + tracks.csv"

    def done(result, error) -> None:
        button.setEnabled(True)
        if error is not None:
            show_error(f"Could not export the tracks: {error}")
            return
        from napari_devosam.tracking.track_files import tracks_text

        show_info(f"Wrote {tracks_text(result['tracks'], result['ctc_tracks'])}, "
                  f"{result['divisions']} divisions and {result['objects']} objects to "
                  f"{result['folder']} ({files})")

    w.jobs.submit(export_store_tracks, folder, w.store, w.current_plane, axis, geff, along_z,
                  on_done=done)
    return True


def replace_confirmed(parent, folder) -> bool:
    """True unless ``folder`` holds an earlier tracking result (``track_files.holds_result``)
    and the user declines to replace it (a question box)."""
    from qtpy.QtWidgets import QMessageBox

    from napari_devosam.tracking.track_files import holds_result

    if not holds_result(folder):
        return True
    answer = QMessageBox.question(
        parent, "Replace the tracking result?",
        f"{folder} holds a tracking result. Replace it with these tracks? Its masks, "
        "res_track.txt, tracks.csv, review.csv and tracks.geff are replaced.")
    return answer == QMessageBox.StandardButton.Yes
