"""One stain per stack (automatic.stack_stain) and its use by iter_segment_stack."""

import numpy as np
import pytest

from napari_devosam.automatic.stack_stain import SAMPLE, sample_planes, stack_stain
from napari_devosam.synthetic.phantoms import make_embryo


@pytest.fixture(scope="module")
def planes():
    membrane = [make_embryo((128, 128), 6, seed=s, kind="membrane")[0] for s in range(4)]
    nuclei = [make_embryo((128, 128), 6, seed=s, kind="nuclei")[0] for s in range(4)]
    return membrane, nuclei


def test_sample_planes_spreads_over_the_stack_and_keeps_its_ends():
    assert sample_planes(range(5), 9) == [0, 1, 2, 3, 4]
    picked = sample_planes(range(100), 9)
    assert len(picked) == 9 and picked[0] == 0 and picked[-1] == 99
    assert picked == sorted(picked) and np.ptp(np.diff(picked)) <= 1
    assert len(sample_planes(range(10), SAMPLE)) == min(10, SAMPLE)


def test_the_planes_most_of_a_stack_show_decide_its_stain(planes):
    membrane, nuclei = planes
    stack = [*nuclei, membrane[0]]  # one plane that looks unlike its movie
    decision = stack_stain(lambda i: stack[i], range(len(stack)))
    assert decision == "nuclei" and decision.decided
    assert "whole stack" in decision.note and "4 nuclei, 1 membrane" in decision.note
    assert "--stain to override" in decision.note


def test_a_split_stack_is_reported_uncertain(planes):
    membrane, nuclei = planes
    stack = [*nuclei[:2], *membrane[:2]]
    decision = stack_stain(lambda i: stack[i], range(len(stack)))
    assert not decision.decided
    assert "uncertain" in decision.note and "--stain to choose" in decision.note


def test_planes_without_an_embryo_do_not_vote(planes):
    membrane, _ = planes
    blank = np.zeros_like(membrane[0])
    stack = [blank, membrane[1], blank]
    decision = stack_stain(lambda i: stack[i], range(3))
    assert decision == "membrane"
    stack = [blank, membrane[1], membrane[2], blank]
    decision = stack_stain(lambda i: stack[i], range(4))
    assert "all 4 planes, 2 with an embryo: 2 membrane" in decision.note
    assert stack_stain(lambda i: blank, range(3)) is None


def test_a_stack_run_uses_one_stain_on_every_plane(planes):
    """iter_segment_stack decides once, on the whole stack, even when asked for one plane;
    the summary prints the stack's note once."""
    from napari_devosam.automatic.core import iter_segment_stack
    from napari_devosam.automatic.report import summary_lines
    from napari_devosam.testing import tiny_sam
    from napari_devosam.utils.progress import drain

    membrane, nuclei = planes
    stack = np.stack([*nuclei, membrane[0]])
    sam = tiny_sam()
    results = drain(iter_segment_stack(stack, sam, [(4,)]))
    assert results[(4,)].stain == "nuclei"  # alone it reads as membrane
    assert "whole stack" in results[(4,)].stain_note
    results = drain(iter_segment_stack(stack, sam, [(0,), (4,)], neighbour=False))
    assert {r.stain for r in results.values()} == {"nuclei"}
    lines = summary_lines(results)
    assert lines[0] == results[(0,)].stain_note
    given = drain(iter_segment_stack(stack, sam, [(4,)], stain="membrane"))
    assert given[(4,)].stain == "membrane" and "given" in given[(4,)].stain_note
    # checked against the stack's decision, not the plane's own (which reads as membrane)
    assert given[(4,)].stain.contradicted
    assert "but the stack reads as nuclei: all 5 planes: 4 nuclei, 1 membrane" in \
        given[(4,)].stain_note
    assert summary_lines(given) == [given[(4,)].stain_note, *summary_lines(given)[1:]]
    right = drain(iter_segment_stack(stack, sam, [(0,), (1,)], stain="nuclei"))
    assert not any(r.stain.contradicted for r in right.values())
    assert summary_lines(right)[0] == "stain: nuclei on 2 planes (given with --stain)"


@pytest.mark.parametrize("blank", ["zeros", "nan", "constant"])
def test_a_blank_plane_copies_nothing_from_its_neighbour(planes, blank):
    """A blank plane in a stack (an acquisition gap) is empty with its message: it took the
    previous plane's objects as seeds (a new-user trial: 6-8 "cells" on all-zero planes)."""
    from napari_devosam.automatic.core import segment_all
    from napari_devosam.testing import tiny_sam

    membrane, _ = planes
    _, labels = make_embryo((128, 128), 6, seed=0, kind="membrane")
    plane = {"zeros": np.zeros((128, 128), np.uint16),
             "nan": np.full((128, 128), np.nan, np.float32),
             "constant": np.full((128, 128), 700, np.uint16)}[blank]
    res = segment_all(plane, tiny_sam(), previous_labels=labels)
    assert res.n_objects == 0 and not res.labels.any()
    assert res.message


def test_a_saturated_run_says_so(planes):
    """A plane whose objects sit mostly at the dtype's largest value is named in the
    summary (a new-user trial: 61 % of an embryo at 255 went unremarked)."""
    from napari_devosam.automatic.core import AutoResult
    from napari_devosam.automatic.report import SATURATED, saturation, summary_lines

    labels = np.zeros((20, 20), np.int32)
    labels[5:15, 5:15] = 1
    plane = np.full((20, 20), 100, np.uint8)
    plane[5:15, 5:10] = 255  # half the object's pixels
    assert saturation(plane, labels) == 0.5
    assert saturation(plane.astype(np.float32), labels) == 0.0
    assert saturation(plane.astype(np.uint16), labels) == 0.0  # 255 is not uint16's top
    res = AutoResult(labels, saturated=0.5)
    assert any(line.startswith("saturated: up to 50%") for line in summary_lines({(): res}))
    calm = AutoResult(labels, saturated=SATURATED / 2)
    assert not any("saturated" in line for line in summary_lines({(): calm, (1,): calm}))


def test_the_summary_names_objects_seeded_from_the_previous_plane():
    """A stack run says how many objects came from the previous plane's (a new-user trial:
    a whole-stack run and ``--plane`` gave different counts, and nothing said why)."""
    from napari_devosam.automatic.core import AutoResult
    from napari_devosam.automatic.report import summary_lines

    labels = np.zeros((8, 8), np.int32)
    own = AutoResult(labels, prompts=[{"source": "nuclei"}], stain="nuclei")
    borrowed = AutoResult(labels, prompts=[{"source": "nuclei"}, {"source": "neighbour"},
                                           {"source": "neighbour"}], stain="nuclei")
    assert not any("previous plane" in line for line in summary_lines({(0,): own}))
    lines = summary_lines({(0,): own, (1,): borrowed, (2,): borrowed})
    assert "4 objects on 2 planes seeded from the previous plane's objects" in " ".join(lines)
