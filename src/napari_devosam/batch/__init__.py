"""``batch``: many image files through embed / auto / track / export on a dask cluster.

The input files are found and read by ``io`` (files, folders, globs; microscopy formats
through the optional ``bioio``). ``outputs`` (label files: OME-Zarr or TIFF, atomic, one name
per input), ``manifest`` (``manifest.json``: the
state of every task, for resuming), ``tasks`` (what a worker runs), ``cluster`` (a
``LocalCluster`` or an existing scheduler; the ``GPU`` resource) and ``runner``
(``run_batch``: submit, follow, record). See docs/batch.md.
"""
