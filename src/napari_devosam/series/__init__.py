"""Image series: many images annotated one after the other (``ImageSeries``), with the
embeddings of the next ones computed ahead (``prefetch_embeddings``)."""
