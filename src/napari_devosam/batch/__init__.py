"""``batch``: many image files through embed / auto / track / export on a dask cluster.

``inputs`` (files, folders, globs; microscopy formats through the optional ``bioio``),
``outputs`` (label files: OME-Zarr or TIFF, atomic), ``manifest`` (``manifest.json``: the
state of every task, for resuming), ``tasks`` (what a worker runs), ``cluster`` (a
``LocalCluster`` or an existing scheduler; the ``GPU`` resource) and ``runner``
(``run_batch``: submit, follow, record). See docs/batch.md.
"""
