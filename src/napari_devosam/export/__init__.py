"""Export: training bundles, COCO annotations, per-object measurements and image file I/O."""
