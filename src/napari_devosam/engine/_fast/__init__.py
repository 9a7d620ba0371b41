"""Private fast kernels of the predictor: the mask decoder (one click in a few ms on a CPU)
and the image encoder's fused attention. Not public API: import ``napari_devosam.engine``.
"""
