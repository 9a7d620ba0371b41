import time

import numpy as np

from napari_devosam.sample_data import embryo_timelapse


def test_sample_is_a_16bit_timelapse_layer_made_fast():
    t0 = time.perf_counter()
    layers = embryo_timelapse()
    elapsed = time.perf_counter() - t0
    assert elapsed < 2.0  # < 1 s on a free core; slack for a shared CI machine
    (data, kwargs, kind), = layers
    assert kind == "image"
    assert data.dtype == np.uint16 and data.ndim == 3 and data.shape[0] >= 3
    low, high = kwargs["contrast_limits"]
    assert data.min() <= low < high < data.max()
    assert kwargs["name"] and kwargs["metadata"]["axes"] == "TYX"


def test_sample_is_registered_in_the_manifest():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution("napari-devosam")
    commands = {c.id: c.python_name for c in manifest.contributions.commands}
    assert commands["napari-devosam.sample_embryo"] == "napari_devosam.sample_data:embryo_timelapse"
