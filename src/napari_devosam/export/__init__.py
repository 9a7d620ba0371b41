"""Export: training bundles, COCO annotations and per-object measurements (image files are
read and written by ``io``)."""
