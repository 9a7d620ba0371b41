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


# -- one declaration: section, range, advanced, help -----------------------------------------

import importlib.util  # noqa: E402
from pathlib import Path  # noqa: E402

from napari_devosam.tracking.params import SECTIONS  # noqa: E402
from napari_devosam.utils.params import specs  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def test_every_field_is_declared_in_one_of_the_six_sections_with_help():
    declared = specs(PropagationParams)
    assert list(declared) == [f.name for f in fields(PropagationParams)]
    assert list(SECTIONS) == ["prompts", "decoding", "track_ends", "review", "divisions",
                              "new_tracks"]
    assert all(s.section in SECTIONS and len(s.help) > 20 for s in declared.values())
    by_section = PropagationParams.sections()
    assert sum(map(len, by_section.values())) == len(declared) and all(by_section.values())
    # the docstring names the sections in the declaration's order
    doc = PropagationParams.__doc__
    assert [doc.index(f"- {title}:") for title in SECTIONS.values()] == sorted(
        doc.index(f"- {title}:") for title in SECTIONS.values())


@pytest.mark.parametrize("name", [n for n, s in specs(PropagationParams).items()
                                  if s.kind in (int, float)])
def test_the_declared_range_is_what_validation_enforces(name):
    spec = specs(PropagationParams)[name]
    assert spec.low is not None  # every number here has a floor
    PropagationParams(**{name: spec.kind(spec.low)})
    below = spec.low - (1 if spec.kind is int else 0.01)
    with pytest.raises(ValueError, match=f"{name} must be"):
        PropagationParams(**{name: below})
    if spec.high is not None:
        PropagationParams(**{name: spec.high})
        with pytest.raises(ValueError, match=f"{name} must be within"):
            PropagationParams(**{name: spec.high + 0.01})


def test_half_fractions_say_why_more_cannot_work():
    with pytest.raises(ValueError, match="free_sister_between.*no room between the cells"):
        PropagationParams(free_sister_between=0.6)
    with pytest.raises(ValueError, match="division_min_fraction.*never hold for two parts"):
        PropagationParams(division_min_fraction=0.51)


def test_a_dict_may_be_flat_or_by_section():
    p = PropagationParams.from_dict({"track_ends": {"min_area": 7, "min_iou_prev": 0.2},
                                     "review_below": 0.5})
    assert (p.min_area, p.min_iou_prev, p.review_below) == (7, 0.2, 0.5)
    with pytest.raises(ValueError, match="min_area is given twice"):
        PropagationParams.from_dict({"track_ends": {"min_area": 7}, "min_area": 8})
    with pytest.raises(ValueError, match="unknown propagation parameter.*: min_arae"):
        PropagationParams.from_dict({"track_ends": {"min_arae": 7}})


def test_a_parameter_file_names_itself_in_its_errors(tmp_path):
    good = tmp_path / "p.json"
    good.write_text(json.dumps({**PropagationParams().to_dict(), "min_area": 9}))
    assert PropagationParams.from_file(good) == PropagationParams(min_area=9)
    for text, match in [('{"min_area": "9"}', "p.json: min_area must be a whole number"),
                        ('{"nope": 1}', "p.json: unknown propagation parameter"),
                        ("[1, 2]", "p.json: propagation parameters must be a mapping"),
                        ("{min_area: 9", "cannot read the parameter file")]:
        good.write_text(text)
        with pytest.raises(ValueError, match=match):
            PropagationParams.from_file(good)
    with pytest.raises(FileNotFoundError, match="no parameter file"):
        PropagationParams.from_file(tmp_path / "missing.json")


def test_the_docs_tables_match_the_declarations():
    spec = importlib.util.spec_from_file_location("params_table",
                                                  ROOT / "tools" / "params_table.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.stale() == []  # else: python tools/params_table.py
    text = (ROOT / "docs" / "tracking.md").read_text(encoding="utf-8")
    for name, s in specs(PropagationParams).items():
        assert f"`{name}`" in text and " ".join(s.help.split())[:40] in text


def test_a_section_named_as_its_switch_is_read_as_a_section():
    """``{"new_tracks": {...}}`` is the New tracks section, not the ``new_tracks`` switch
    (a new-user trial: "new_tracks must be True or False"); a name in another section's
    dict is refused."""
    p = PropagationParams.from_dict({"new_tracks": {"new_track_min_brightness": 0.7,
                                                    "new_tracks": False}})
    assert p.new_track_min_brightness == 0.7 and p.new_tracks is False
    assert PropagationParams.from_dict({"new_tracks": False}).new_tracks is False
    with pytest.raises(ValueError, match="belongs to the section new_tracks"):
        PropagationParams.from_dict({"track_ends": {"new_track_min_brightness": 0.7}})


def test_the_stain_is_one_of_the_stains():
    assert PropagationParams(stain="nuclei").stain == "nuclei"
    assert PropagationParams().stain == "auto"
    with pytest.raises(ValueError, match="stain"):
        PropagationParams(stain="dapi")
