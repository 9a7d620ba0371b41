"""Division strategies of propagation: how one tracked cell becomes two daughters.

Each is tried by ``tracking.propagate`` on every forward step (``PropagationParams`` turns
them on and sets their thresholds):

- ``split``: SAM's new mask falls apart into two substantial parts (``split_mask``);
- ``stain_seeds``: the image's own cells (stain-aware seeds, as in automatic segmentation)
  inside one mask or near a track about to end;
- ``steps``: the plane's division steps in order: splits proposed from the seeds, daughters
  decoded again one by one, lost tracks found again (``propose_splits``,
  ``refine_daughters``, ``redetect``, ``end_reason``);
- ``free_cells``: a daughter nobody claimed, beside a track that went on as its sister.
"""
