"""tracking.params: every field is checked for its kind and range when the parameters are
made, from Python or from a dict (a saved file, the GUI form)."""

import json
from dataclasses import fields

import numpy as np
import pytest

from napari_devosam.tracking.params import PropagationParams


def _kind(name):
    return type(next(f.default for f in fields(PropagationParams) if f.name == name))


@pytest.mark.parametrize("name", [f.name for f in fields(PropagationParams)])
def test_every_field_refuses_values_of_the_wrong_kind(name):
    kind = _kind(name)
    bad = ["0.5", None]
    if kind is bool:
        bad += ["no", 1]
    elif kind is int:
        bad += [1.5, True, float("nan")]
    else:
        bad += [float("nan"), float("inf"), -float("inf"), True]
    for value in bad:
        with pytest.raises(ValueError, match=name):
            PropagationParams(**{name: value})


def test_nan_from_a_json_file_is_refused():
    values = json.loads('{"window_context": NaN, "min_iou_prev": 0.2}')
    with pytest.raises(ValueError, match="window_context must be a finite number"):
        PropagationParams.from_dict(values)


def test_numpy_scalars_and_whole_floats_for_float_fields_are_accepted():
    p = PropagationParams(box_margin_px=3, min_area=np.int64(5), decode_window=np.bool_(False),
                          window_context=np.float32(0.25))
    assert p.min_area == 5 and not p.decode_window and p.box_margin_px == 3
    assert PropagationParams.from_dict(PropagationParams().to_dict()) == PropagationParams()
