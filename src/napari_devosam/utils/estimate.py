"""How long long work will take, said before (most of) it runs.

An estimate is a count of units (planes to embed, training steps) times a time per unit that
was measured: on this machine, on the first unit of the same run
(``utils.clocks.FirstUnit``), or on an earlier run of the same model on this machine
(``engine.encoder_timing`` in this process;
``recorded_seconds`` across processes: the CLI records its runs' per-plane encoder times in
``<cache root>/encoder_times.json``, keyed by model, device and precision). The same file
holds the per-plane times of the steps after the encoder (``STEPS``: the automatic
segmentation, the propagation), keyed ``"<step>|<encoder key>|<size class>"`` (``step_key``
of the key with the planes' ``size_class``: a step's time per plane grows with the plane;
``devosam batch`` and records written before sizes were kept have no class, and are used
when the class has none), so that an estimate covers the whole work (``work_line``;
``panel_line`` for the annotator's panels, from the recorded times). A step whose cost
grows with the objects it follows (``PER_OBJECT``: the propagation) is also recorded per
object-plane (``object_key``: its time over the tracked objects summed over the planes
visited), and estimated as seeds x planes x that time when the seed count is known
(``recorded_step``; else, and with an older record file, per plane).
The CLI and the annotator record the same times (``record_run``), and a run's time left is
updated from its planes done so far (``utils.clocks.TimeLeft``). Nothing here guesses a speed.
"""

from __future__ import annotations

import contextlib
import json
import math

from napari_devosam.utils.text import count


def duration(seconds: float) -> str:
    """``"under 1 s"``, ``"42 s"``, ``"3 min 20 s"``, ``"1 h 05 min"``."""
    s = float(seconds)
    if s < 1:
        return "under 1 s"
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        m, rest = divmod(int(round(s)), 60)
        return f"{m} min {rest:02d} s" if m < 10 else f"{m} min"
    h, rest = divmod(int(round(s)) // 60, 60)
    return f"{h} h {rest:02d} min"


def per_unit(seconds: float) -> str:
    """A measured time per unit as a user reads it: ``0.48 s``, ``12 s``, ``2 min 05 s``."""
    s = float(seconds)
    return f"{s:.2g} s" if s < 10 else duration(s)


def about(seconds: float) -> str:
    """``"about 3 min 20 s"``; under a second ``"about 0.35 s"`` (never "about under 1 s")."""
    s = float(seconds)
    return f"about {per_unit(s) if s < 1 else duration(s)}"


def estimate_line(n: int, seconds_each: float, noun: str, how: str = "measured",
                  what: str = "") -> str:
    """``"about 3 min 20 s for 421 planes (0.48 s per plane, measured)"``; ``what`` follows
    the count (``" to embed"``: ``"... for 421 planes to embed (...)"``)."""
    return (f"{about(n * seconds_each)} for {count(n, noun)}{what} "
            f"({per_unit(seconds_each)} per {noun}, {how})")


def capped(seconds: float, limit: float | None, flag: str = "",
           stops_after: float | None = None) -> str:
    """An estimate under a time limit (seconds; None: no limit).

    Within the limit: ``"about 3 min 10 s, within the 8 min limit of --max-minutes"``.
    Beyond it: ``"about 8 min 05 s, capped at 8 min by --max-minutes (about 22 min without
    it)"``, where the first time is ``stops_after`` (when the run really stops: the limit
    plus the step that crosses it), else the limit. ``flag`` names the option that sets it.
    """
    if limit is None:
        return about(seconds)
    cap = per_unit(limit) if limit < 60 else duration(limit).removesuffix(" 00 s")
    if seconds <= limit:
        return f"{about(seconds)}, within the {cap} limit{' of ' + flag if flag else ''}"
    stop = limit if stops_after is None else stops_after
    return (f"{about(stop)}, capped at {cap}{' by ' + flag if flag else ''} "
            f"({about(seconds)} without it)")


# --- per-plane encoder times recorded across runs ------------------------------------------

RECORD_NAME = "encoder_times.json"
#: How a time per plane was measured, as the estimate lines say it.
HOW_HERE = "measured here"
HOW_RECORDED = "recorded on an earlier run here"
HOW_FIRST = "measured here, warm"


def record_key(model, device, precision) -> str:
    """The key of a per-plane encoder time: model name or path, device (``cpu``, ``cuda:0``)
    and precision (``fp32``, ``bf16``)."""
    return f"{model}|{device}|{precision}"


def _record_file():
    from napari_devosam.utils.cache import cache_root

    return cache_root() / RECORD_NAME


def _read_records() -> dict:
    try:
        data = json.loads(_record_file().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def recorded_seconds(key: str) -> float | None:
    """The per-plane encoder time recorded for ``key`` by an earlier run, or None."""
    value = _read_records().get(key)
    if isinstance(value, int | float) and math.isfinite(value) and value > 0:
        return float(value)
    return None


def record_seconds(key: str, seconds: float | None) -> None:
    """Remember ``seconds`` per plane for ``key`` (the latest run wins). A cache folder that
    cannot be written is no error: the next run measures again."""
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        return
    records = _read_records()
    records[key] = round(float(seconds), 4)
    _write_records(records)


def forget_seconds(key: str) -> None:
    """Drop the time recorded for ``key`` (a part the last run did not have)."""
    records = _read_records()
    if records.pop(key, None) is not None:
        _write_records(records)


def _write_records(records: dict) -> None:
    """Write the record file atomically; a folder that cannot be written is no error."""
    from napari_devosam.utils.atomic import write_text

    with contextlib.suppress(OSError):
        write_text(_record_file(), json.dumps(records, indent=1, sort_keys=True) + "\n")


# --- whole work: embedding + a per-plane step (automatic segmentation, propagation) --------

#: What each recorded per-plane step is, as the estimate lines name it.
STEPS = {"auto": "automatic segmentation", "auto-grid": "automatic segmentation (grid)",
         "track": "propagation and new-cell detection"}
#: What the planes are for, after their count: ``"61 planes to segment"``.
STEP_VERBS = {"auto": "to segment", "auto-grid": "to segment", "track": "to track"}


def auto_step(mode: str) -> str:
    """The ``STEPS`` entry of automatic segmentation in ``mode`` (``"seeded"``, ``"grid"``):
    the two cost differently (a grid decodes every point of it), so each keeps its own
    time (a grid run recorded as seeded made the next seeded estimate 10x too long)."""
    return "auto-grid" if mode == "grid" else "auto"


def step_key(step: str, key: str) -> str:
    """The record key of the per-plane time of ``step`` (one of ``STEPS``) beside the encoder
    time of ``key`` (``record_key``): ``"auto|<model>|<device>|<precision>"``."""
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}: one of {', '.join(STEPS)}")
    return f"{step}|{key}"


#: The steps also recorded per object-plane (their cost grows with the objects followed),
#: as the per-object estimate names them.
PER_OBJECT = {"track": "propagation"}


def object_key(step: str, key: str) -> str:
    """The record key of the seconds per object-plane of ``step`` (one of ``PER_OBJECT``)
    beside the encoder time of ``key``: ``"track-object|<model>|<device>|<precision>"``."""
    if step not in PER_OBJECT:
        raise ValueError(f"no per-object time for {step!r}: one of {', '.join(PER_OBJECT)}")
    return f"{step}-object|{key}"


#: What a ``PER_OBJECT`` step also spends once per plane, whatever its objects (new-cell
#: detection: 0.88 s of each plane of a DevoLearn nuclear window; counted per object, the
#: estimate of that 28 s run was 5 s, now 13 s).
PER_PLANE_PART = {"track": "new-cell detection"}


def plane_part_key(step: str, key: str) -> str:
    """The record key of the seconds per plane of ``step``'s ``PER_PLANE_PART``."""
    if step not in PER_PLANE_PART:
        raise ValueError(f"no per-plane part for {step!r}: one of {', '.join(PER_PLANE_PART)}")
    return f"{step}-plane|{key}"


def size_class(shape) -> str:
    """The size class of planes of ``shape`` (``(H, W)``, or ``(H, W, 3|4)`` colour): their
    side (the square root of their area) to the nearest power of two, e.g. ``"512px"``. The
    time of a step per plane is recorded per class (``recorded_step``'s ``size``): a
    new-user trial's 40 x 40 crops recorded 1.1 s a plane and the panel then said so of
    472 x 512 planes, which took 5.3 s."""
    dims = tuple(int(v) for v in shape)
    h, w = dims[-3:-1] if len(dims) >= 3 and dims[-1] in (3, 4) else dims[-2:]
    side = max(float(h * w), 1.0) ** 0.5
    return f"{2 ** int(round(math.log2(side)))}px"


def _sized(key: str, size) -> str:
    return key if size is None else f"{key}|{size_class(size)}"


def recorded_step(step: str, key: str | None, objects: int | None = None,
                  plane_part: bool = True, size=None):
    """The recorded time of ``step`` for ``key`` as a ``work_line`` step: ``(step, seconds
    per object-plane, how, objects, seconds per plane of its PER_PLANE_PART)`` when
    ``objects`` (the run's seed count) is given and a per-object time is recorded
    (``object_key``; the per-plane part 0.0 when none is recorded, None when the run will
    not do it: ``plane_part`` False, e.g. tracking with ``new_tracks`` off), else ``(step,
    seconds per plane, how, None)`` from the per-plane record; None when neither is
    recorded (or ``key`` is None). ``size``: the planes' shape; then the times recorded on
    planes of its ``size_class`` count (else a time recorded before sizes were kept)."""
    if key is None:
        return None
    for k in ([_sized(key, size), key] if size is not None else [key]):
        found = _recorded_step(step, k, objects, plane_part)
        if found is not None:
            return found
    return None


def _recorded_step(step: str, key: str, objects: int | None, plane_part: bool):
    if objects and step in PER_OBJECT:
        each = recorded_seconds(object_key(step, key))
        if each is not None:
            if not plane_part:
                return step, each, HOW_RECORDED, int(objects), None
            part = recorded_seconds(plane_part_key(step, key)) if step in PER_PLANE_PART else None
            return step, each, HOW_RECORDED, int(objects), part or 0.0
    each = recorded_seconds(step_key(step, key))
    return None if each is None else (step, each, HOW_RECORDED, None)


def step_seconds(wall: float, n_planes: int, n_embedded: int,
                 encoder_each: float | None) -> float | None:
    """Seconds per plane of a step from a run's ``wall`` seconds over ``n_planes`` planes,
    less the encoder time of the ``n_embedded`` planes it embedded (``encoder_each`` each);
    None when no plane was processed."""
    if n_planes <= 0:
        return None
    encoder = n_embedded * (encoder_each or 0.0)
    return max(float(wall) - encoder, 0.0) / n_planes


def work_line(n: int, steps, n_embed: int = 0, embed_each: float | None = None,
              embed_how: str = "", what: str | None = None) -> str:
    """The whole work of ``n`` planes: ``n_embed`` of them through the encoder
    (``embed_each`` s each) and all ``n`` through each of ``steps``, ``(step, seconds per
    plane, how measured)`` with ``step`` a key of ``STEPS`` (or ``(step, seconds per
    object-plane, how, objects)``: ``objects`` followed on every plane, ``recorded_step``),
    e.g. ``"about 1 min 32 s for 61 planes to segment (embedding 61 planes at 0.13 s each,
    recorded on an earlier run here; automatic segmentation 1.4 s per plane, recorded on an
    earlier run here)"``. ``what`` follows the count (default: the one step's ``STEP_VERBS``,
    else "to process")."""
    steps = list(steps)
    embed = n_embed * (embed_each or 0.0)
    if n_embed:
        parts = [f"embedding {count(n_embed, 'plane')} at {per_unit(embed_each or 0.0)} each, "
                 f"{embed_how}"]
    else:
        parts = ["no embedding: every plane is in the cache"]
    parts += [_step_part(step) for step in steps]
    if what is None:
        what = STEP_VERBS[steps[0][0]] if len(steps) == 1 else "to process"
    total = embed + sum(_step_cost(n, step) for step in steps)
    return f"{about(total)} for {count(n, 'plane')} {what} ({'; '.join(parts)})"


def _step_part(step) -> str:
    """``"automatic segmentation 1.4 s per plane, recorded ..."`` of a ``(step, seconds,
    how)`` step; ``"propagation of 104 objects at 0.09 s per object-plane, recorded ..."`` of
    a ``(step, seconds, how, objects)`` one (``objects`` None: per plane; the seeds only:
    cells that start new tracks add to it, a new-user trial's 6 s estimate took 25 s as 8
    seeded nuclei became 36 tracked ones)."""
    name, each, how, *objects = step
    if not objects or objects[0] is None:
        return f"{STEPS[name]} {per_unit(each)} per plane, {how}"
    part = objects[1] if len(objects) > 1 else 0.0
    plane = f" and {PER_PLANE_PART[name]} {per_unit(part)} per plane" if part else ""
    more = "" if part is None else "; more if new cells start tracks"
    return (f"{PER_OBJECT[name]} of {count(objects[0], 'object')} at {per_unit(each)} per "
            f"object-plane{plane}, {how}{more}")


def _step_cost(n: int, step) -> float:
    """Seconds of a ``work_line`` step on ``n`` planes: per plane, or per object-plane."""
    _, each, _, *objects = step
    part = (objects[1] if len(objects) > 1 else 0.0) or 0.0
    return n * (each * (objects[0] if objects and objects[0] is not None else 1) + part)


def timing_first_line(n: int, step: str) -> str:
    """Said when no time of ``step`` is recorded: ``"61 planes to segment; no time recorded
    for automatic segmentation here yet: timing the first plane"`` (the estimate follows
    it, from ``FirstUnit``)."""
    return (f"{count(n, 'plane')} {STEP_VERBS[step]}; no time recorded for {STEPS[step]} "
            "here yet: timing the first plane")


def record_run(step: str, key: str, wall: float, n_steps: int, n_embedded: int,
               encoder_each: float | None, object_planes: int | None = None,
               plane_seconds: float | None = None, size=None) -> float | None:
    """Record a finished run of ``step`` keyed by ``key`` (``record_key``): the encoder's
    ``encoder_each`` seconds per plane, and the step's per-plane time (``step_seconds``: the
    ``wall`` seconds over ``n_steps`` planes less the encoder time of the ``n_embedded``
    planes it embedded; ``encoder_each`` None: the recorded one). For a ``PER_OBJECT`` step
    with ``object_planes`` (the tracked objects summed over the planes visited) the same time
    over them is recorded too (``object_key``), less ``plane_seconds`` (the run's seconds in
    the step's ``PER_PLANE_PART``, recorded per plane: ``plane_part_key``; None: not
    measured, nothing taken off). ``size``: the planes' shape; the step's times are recorded
    for its ``size_class`` (the encoder's, which sees a fixed input, for every size). Returns
    the step's time per plane, None when no plane was processed (nothing recorded for the
    step)."""
    record_seconds(key, encoder_each)
    each = encoder_each if encoder_each is not None else recorded_seconds(key)
    key = _sized(key, size)
    step_each = step_seconds(wall, n_steps, n_embedded, each)
    record_seconds(step_key(step, key), step_each)
    if step in PER_OBJECT and object_planes and step_each is not None:
        per_plane = 0.0
        if plane_seconds is not None and step in PER_PLANE_PART:
            per_plane = min(max(float(plane_seconds), 0.0), float(wall))
            if per_plane > 0:
                record_seconds(plane_part_key(step, key), per_plane / n_steps)
            else:  # no detection this run (new_tracks off): the next estimate has none
                forget_seconds(plane_part_key(step, key))
        record_seconds(object_key(step, key),
                       step_seconds(wall - per_plane, object_planes, n_embedded, each))
    return step_each


def panel_line(what: str, n: int, step: str | None, key: str | None, n_embed: int,
               embed_each: float | None = None, objects: int | None = None,
               detects: bool = True, size=None) -> str:
    """The annotator's line before ``what`` (``"Segment all planes"``) runs on ``n`` planes,
    ``n_embed`` of them not embedded yet, then ``step`` (a key of ``STEPS``; None: the
    encoder only, e.g. Precompute), from the times recorded for ``key`` (``record_key``; None
    when the model has no key) and the encoder's ``embed_each`` seconds per plane measured in
    this process (else the recorded one). ``objects``: the seeds a ``PER_OBJECT`` step will
    follow (``recorded_step``: per object-plane when recorded, else per plane; ``detects``
    False: without its per-plane part, new-cell detection being off). With no time
    of ``step`` recorded, the line counts the encoder only and says the first plane will be
    timed. ``size``: the planes' shape (``recorded_step``). ``""`` for no plane."""
    if n <= 0:
        return ""
    each, how = embed_each, HOW_HERE
    if each is None and key is not None:
        each, how = recorded_seconds(key), HOW_RECORDED
    timed = None if step is None else recorded_step(step, key, objects, detects, size)
    if timed is not None and (each is not None or not n_embed):
        return f"{what}: {work_line(n, [timed], n_embed, each, how)}"
    if timed is not None:  # the step is timed, the encoder not yet
        return (f"{what}: {about(_step_cost(n, timed))} for {count(n, 'plane')} "
                f"{STEP_VERBS[step]} ({_step_part(timed)}), plus embedding "
                f"{count(n_embed, 'plane')}: its time shows here once a plane is embedded")
    if step is None:
        if not n_embed:
            return f"{what}: every plane is in the cache: no encoder work"
        if each is None:
            return (f"{what}: {count(n_embed, 'plane')} to embed; the time per plane shows "
                    "here once the first plane is embedded")
        return f"{what}: {_embedding(n, n_embed, each, how)}"
    untimed = f"no time recorded for {STEPS[step]} here yet: the first plane will be timed"
    if each is None or not n_embed:
        return f"{what}: {count(n, 'plane')} {STEP_VERBS[step]}; {untimed}"
    return (f"{what}: {count(n, 'plane')} {STEP_VERBS[step]}: "
            f"{_embedding(n, n_embed, each, how)}; this counts the encoder only ({untimed})")


def _embedding(n: int, n_embed: int, each: float, how: str) -> str:
    """``"about 15 s for 29 planes to embed (0.5 s per plane, measured here; 1 of 30 in the
    cache)"``: the encoder's work on the ``n_embed`` of ``n`` planes not in the cache."""
    cached = f"; {n - n_embed} of {n} in the cache" if n_embed < n else ""
    return (f"{about(n_embed * each)} for {count(n_embed, 'plane')} to embed "
            f"({per_unit(each)} per plane, {how}{cached})")
