"""``devosam segment IMAGE --auto``: labels for one plane or every plane; nothing written on
interrupt; unknown --mode lists the modes."""

import numpy as np
import pytest
import tifffile
import torch

import napari_devosam.automatic.core as core
import napari_devosam.models.loading as model_loading
from napari_devosam.cli import main
from napari_devosam.synthetic.phantoms import make_embryo, make_timelapse
from napari_devosam.testing import tiny_sam


@pytest.fixture
def env(tmp_path, monkeypatch):
    ckpt = tmp_path / "tiny.pth"
    torch.save(tiny_sam(seed=4).state_dict(), ckpt)
    real_load = model_loading.load_model
    monkeypatch.setattr(model_loading, "load_model",
                        lambda model=None, device="auto", decoder=None, **kw: real_load(
                            model, device=device, decoder=decoder, builder=tiny_sam, **kw))
    plane, _ = make_embryo((96, 128), 4, seed=10_000_600)
    stack, _ = make_timelapse(2, (96, 128), 3, seed=10_000_601)
    stack = np.stack([stack, stack[:, ::-1]], axis=1)  # (T=2, Z=2, Y, X)
    paths = {}
    for name, data in [("plane", plane), ("stack", stack)]:
        paths[f"{name}_path"] = tmp_path / f"{name}.tif"
        tifffile.imwrite(paths[f"{name}_path"], data)
    return dict(tmp=tmp_path, ckpt=str(ckpt), plane=plane, stack=stack, **paths)


def run(env, image, *args):
    out = env["tmp"] / "labels.tif"
    rc = main(["segment", str(image), "--auto", "--model", env["ckpt"], "--out", str(out),
               *args])
    return rc, out


@pytest.mark.parametrize("mode", ["seeded", "grid"])
def test_one_plane(env, capsys, mode):
    rc, out = run(env, env["plane_path"], "--mode", mode)
    assert rc == 0
    labels = tifffile.imread(out)
    assert labels.shape == env["plane"].shape and labels.dtype == np.uint16
    assert f"({mode} mode)" in capsys.readouterr().out


def test_a_stain_the_image_does_not_read_as_is_a_warning(env, capsys):
    """make_embryo draws membranes: --stain nuclei is said on stderr, --stain membrane not."""
    rc, _ = run(env, env["plane_path"], "--stain", "nuclei")
    out, err = capsys.readouterr()
    assert rc == 0
    warned = [line for line in err.splitlines() if "warning: stain" in line]
    assert len(warned) == 1 and "but the image reads as membrane" in warned[0]
    assert "stain:" not in out  # said once, as a warning
    rc, _ = run(env, env["plane_path"], "--stain", "membrane")
    out, err = capsys.readouterr()
    assert rc == 0 and "warning: stain" not in err
    assert "stain: membrane (given with --stain)" in out.splitlines()


def test_every_plane_of_a_stack_or_one(env, monkeypatch):
    seen = []
    real = core.segment_all

    def spy(source, model, **kw):
        seen.append(kw.get("previous_labels") is not None)
        return real(source, model, **kw)

    monkeypatch.setattr(core, "segment_all", spy)
    rc, out = run(env, env["stack_path"])
    assert rc == 0
    labels = tifffile.imread(out)
    assert labels.shape == env["stack"].shape and labels.dtype == np.uint16
    assert len(seen) == 4
    rc, out = run(env, env["stack_path"], "--plane", "1:0")
    assert rc == 0 and tifffile.imread(out).shape == env["stack"].shape[-2:]


@pytest.mark.parametrize("flag, second", [((), True), (("--no-second-round",), False)])
def test_the_second_round_is_on_unless_switched_off(env, monkeypatch, flag, second):
    seen = []
    real = core.segment_all

    def spy(source, model, **kw):
        seen.append(kw["second_round"])
        return real(source, model, **kw)

    monkeypatch.setattr(core, "segment_all", spy)
    rc, _ = run(env, env["plane_path"], *flag)
    assert rc == 0 and seen == [second]


def test_empty_plane_warns(env, capsys):
    path = env["tmp"] / "empty.tif"
    tifffile.imwrite(path, np.zeros((64, 64), np.uint16))
    rc, out = run(env, path)
    assert rc == 0 and not tifffile.imread(out).any()
    assert "every pixel has the same value: no embryo" in capsys.readouterr().err


def test_an_interruption_mid_stack_ends_the_progress_line_first(env, monkeypatch, capsys):
    real, calls = core.segment_all, []

    def second_plane_interrupted(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(core, "segment_all", second_plane_interrupted)
    rc, out = run(env, env["stack_path"])
    assert rc == 130 and not out.exists()
    err = capsys.readouterr().err
    assert "segmenting planes: 2/4\ndevosam: interrupted" in err


def test_interrupted_run_writes_nothing(env, monkeypatch):
    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(core, "segment_all", boom)
    rc, out = run(env, env["stack_path"])
    assert rc == 130 and not out.exists()


def test_unknown_mode_lists_modes(env, capsys):
    with pytest.raises(SystemExit):
        run(env, env["plane_path"], "--mode", "magic")
    err = capsys.readouterr().err
    assert "seeded" in err and "grid" in err


def test_prompts_and_auto_do_not_mix(env, capsys):
    rc, _ = run(env, env["plane_path"], "--box", "1,1,20,20")
    assert rc == 1 and "--auto takes no" in capsys.readouterr().err


def test_grid_and_seeded_runs_keep_their_own_recorded_times(env, tmp_path, monkeypatch):
    """A grid run's time per plane must not become the next seeded run's estimate (the
    new-user trial: one grid run made a seeded estimate of 5 min 47 s for a 37 s run)."""
    import json

    monkeypatch.setenv("DEVOSAM_CACHE_DIR", str(tmp_path / "cache"))
    records = tmp_path / "cache" / "encoder_times.json"
    assert run(env, env["stack_path"], "--mode", "grid")[0] == 0
    keys = json.loads(records.read_text())
    assert any(k.startswith("auto-grid|") for k in keys)
    assert not any(k.startswith("auto|") for k in keys)
    assert run(env, env["stack_path"], "--mode", "seeded")[0] == 0
    after = json.loads(records.read_text())
    grid = [k for k in after if k.startswith("auto-grid|")]
    assert after[grid[0]] == keys[grid[0]]  # the seeded run left the grid time alone
    assert any(k.startswith("auto|") for k in after)
