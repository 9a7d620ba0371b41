"""The engine: grayscale -> RGB conversion, coordinates, stacks, image embeddings and their
disk cache, the decoder door (``decoding``: every batched decode of the package) and the
predictor that turns prompts into masks.

The fast decoder and encoder kernels live in the private ``_fast`` subfolder, which nothing
outside ``engine`` imports. Nothing here imports Qt or napari.
"""
