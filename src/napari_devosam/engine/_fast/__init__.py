"""Private kernels behind ``engine.decoding`` and ``engine.embeddings``: the mask decoder (one
click in a few ms on a CPU), its windowed form (``window_decoder``, ``two_way``,
``windowed``), the differentiable training decoder (``tokens``, ``trainable``) and the image
encoder's fused attention. Not public API, and imported only from ``engine``
(tests/test_layout.py): use ``napari_devosam.engine.decoding``.
"""
