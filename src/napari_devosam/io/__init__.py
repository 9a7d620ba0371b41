"""Image files: the one place that reads them and writes TIFF.

``read`` (``read_image``, ``read_first_plane``: TIFF/OME-TIFF, PNG/JPEG, and CZI/ND2/LIF
through the optional ``bioio``), ``find`` (``find_inputs``: the image files named by files,
folders and globs) and ``write`` (``write_tiff``, ``label_dtype``). Every command of the CLI,
the GUI, ``series`` and ``batch`` read through here, so they accept the same files.
"""
