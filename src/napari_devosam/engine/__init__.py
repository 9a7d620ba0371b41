"""The engine: grayscale -> RGB conversion, coordinates, stacks, image embeddings and their
disk cache, and the predictor that turns prompts into masks.

The fast decoder and encoder kernels live in the private ``_fast`` subfolder. Nothing here
imports Qt or napari.
"""
