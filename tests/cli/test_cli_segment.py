"""`devosam segment` and `devosam embed` through the CLI's main(), with a tiny checkpoint.

The checkpoint file holds a tiny SAM's weights; it is read by the real model loader, given the
tiny architecture as its builder (the official architectures are too slow for unit tests).
"""

import numpy as np
import pytest
import tifffile
import torch

import napari_devosam.models.loading as model_loading
from napari_devosam.cli import main
from napari_devosam.engine.predictor import Predictor
from napari_devosam.testing import tiny_sam

SHAPE = (80, 120)
SEED = 4  # the checkpoint's weights differ from tiny_sam()'s default ones


def _plane(shift=0):
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    disc = ((yy - 40) ** 2 + (xx - 50 - shift) ** 2 < 20**2) * 3000
    noise = np.random.default_rng(shift).integers(0, 400, size=SHAPE)
    return (disc + noise).astype(np.uint16)


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Checkpoint, images and a model loader that counts image-encoder runs."""
    ckpt = tmp_path / "tiny.pth"
    torch.save(tiny_sam(seed=SEED).state_dict(), ckpt)
    real_load = model_loading.load_model
    encodes = []

    def load(model=None, device="auto", decoder=None, **kw):
        sam = real_load(model, device=device, decoder=decoder, builder=tiny_sam, **kw)
        sam.image_encoder.register_forward_hook(lambda m, i, o: encodes.append(o.shape[0]))
        return sam

    monkeypatch.setattr(model_loading, "load_model", load)
    monkeypatch.setenv("DEVOSAM_CACHE_DIR", str(tmp_path / "cache"))
    image = tmp_path / "plane.tif"
    tifffile.imwrite(image, _plane())
    stack = np.stack([np.stack([_plane(5 * t + z) for z in range(3)]) for t in range(2)])
    stack_path = tmp_path / "stack.tif"
    tifffile.imwrite(stack_path, stack)
    return dict(tmp=tmp_path, ckpt=str(ckpt), image=str(image), stack=str(stack_path),
                stack_data=stack, encodes=encodes)


def _reference(plane):
    pred = Predictor(tiny_sam(seed=SEED))
    pred.set_image(plane)
    return pred


def _segment(env, *args):
    out = env["tmp"] / "labels.tif"
    rc = main(["segment", env["image"], "--model", env["ckpt"], "--out", str(out), *args])
    return rc, out


def test_boxes_make_one_object_each(env, capsys):
    boxes = [(20, 30, 60, 70), (5, 80, 40, 115)]
    rc, out = _segment(env, *[f"--box={','.join(map(str, b))}" for b in boxes])
    assert rc == 0
    labels = tifffile.imread(out)
    assert labels.shape == SHAPE and labels.dtype == np.uint16
    masks, _ = _reference(_plane()).predict_boxes(boxes)
    expected = np.zeros(SHAPE, np.uint16)
    for i, m in enumerate(masks, start=1):
        expected[m & (expected == 0)] = i
    np.testing.assert_array_equal(labels, expected)
    assert "wrote 2 objects" in capsys.readouterr().out


def test_a_box_partly_outside_is_clipped_with_a_warning(env, capsys):
    rc, out = _segment(env, "--box=-20,30,60,500")
    assert rc == 0
    err = capsys.readouterr().err
    assert "devosam segment: warning: box (-20, 30, 60, 500) reaches outside the" in err
    assert "clipped to (0, 30, 60, " in err
    masks, _ = _reference(_plane()).predict_boxes([(0, 30, 60, SHAPE[1] - 1)])
    np.testing.assert_array_equal(tifffile.imread(out), masks[0].astype(np.uint16))


@pytest.mark.parametrize("prompt", ["--box=10,10,50,50", "--point=40,50"])
def test_a_prompt_on_a_constant_plane_gives_no_object_and_says_why(env, capsys, prompt):
    """SAM answers any prompt with a mask, even on an all-zero frame (a trial's 979 px)."""
    blank = env["tmp"] / "zeros.tif"
    tifffile.imwrite(blank, np.zeros(SHAPE, np.uint16))
    out = env["tmp"] / "labels.tif"
    rc = main(["segment", str(blank), "--model", env["ckpt"], "--out", str(out), prompt])
    assert rc == 0 and not tifffile.imread(out).any()
    captured = capsys.readouterr()
    assert "constant (no contrast): nothing to segment" in captured.err
    assert "wrote 0 objects" in captured.out
    assert env["encodes"] == []  # decided before any model work


def test_points_alone_and_points_refining_a_box(env):
    rc, out = _segment(env, "--point", "40,50", "--point", "5,5,0")
    assert rc == 0
    masks, _, _ = _reference(_plane()).predict(points=[(40, 50), (5, 5)], point_labels=[1, 0])
    np.testing.assert_array_equal(tifffile.imread(out), masks[0].astype(np.uint16))
    rc, out = _segment(env, "--box", "20,30,60,70", "--point", "40,50,1")
    assert rc == 0
    masks, _, _ = _reference(_plane()).predict(box=(20, 30, 60, 70), points=[(40, 50)])
    np.testing.assert_array_equal(tifffile.imread(out), masks[0].astype(np.uint16))


def test_single_click_keeps_the_best_of_three(env):
    rc, out = _segment(env, "--point", "40,50")
    assert rc == 0
    masks, scores, _ = _reference(_plane()).predict(points=[(40, 50)], multimask=True)
    expected = masks[int(np.argmax(scores))].astype(np.uint16)
    np.testing.assert_array_equal(tifffile.imread(out), expected)


def test_plane_of_a_stack(env):
    out = env["tmp"] / "p.tif"
    args = ["segment", env["stack"], "--model", env["ckpt"], "--box", "20,30,60,70"]
    assert main([*args, "--plane", "1:2", "--out", str(out)]) == 0
    labels = tifffile.imread(out)
    assert labels.shape == SHAPE
    masks, _ = _reference(env["stack_data"][1, 2]).predict_boxes([(20, 30, 60, 70)])
    np.testing.assert_array_equal(labels, masks[0].astype(np.uint16))
    assert main([*args, "--plane", "5", "--out", str(out)]) == 0  # flat index of (1, 2)
    np.testing.assert_array_equal(tifffile.imread(out), labels)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--box", "1,2,3"], "bad --box"),
        (["--box", "a,b,c,d"], "bad --box"),
        (["--box", "100,130,150,200"], "outside"),
        (["--box", "30,30,10,60"], "inverted"),
        (["--point", "40,50,2"], "label"),
        (["--point", "400,50"], "outside"),
        (["--box", "1,1,20,20", "--box", "30,30,60,60", "--point", "5,5"], "at most one --box"),
        ([], "no prompt"),
        (["--box", "1,1,20,20", "--plane", "3"], "--plane 3 is outside"),
        (["--box", "1,1,20,20", "--model", "/no/such/model.pth"], "does not exist"),
        (["--box", "1,1,20,20", "--device", "tpu"], "device"),
    ],
)
def test_user_errors_are_one_line(env, capsys, args, message):
    out = env["tmp"] / "labels.tif"
    argv = ["segment", env["image"], "--out", str(out)]
    if "--model" not in args:
        argv += ["--model", env["ckpt"]]
    assert main([*argv, *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("devosam segment: error:") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


def test_missing_image_and_stack_without_plane(env, capsys):
    out = str(env["tmp"] / "l.tif")
    assert main(["segment", str(env["tmp"] / "nope.tif"), "--box", "1,1,9,9", "--out", out]) == 1
    assert "no image file" in capsys.readouterr().err
    assert main(["segment", env["stack"], "--box", "1,1,9,9", "--out", out]) == 1
    err = capsys.readouterr().err
    assert "--plane" in err and len(err.strip().splitlines()) == 1
    assert env["encodes"] == []  # errors come before any model work


def test_embed_fills_the_cache_that_segment_uses(env, capsys):
    cache = env["tmp"] / "emb"
    args = ["embed", env["stack"], "--model", env["ckpt"], "--cache-dir", str(cache)]
    assert main(args) == 0
    captured = capsys.readouterr()
    err = captured.err
    assert "embedding" in err and "6/6" in err  # tqdm bar on stderr
    # before the run: how long the planes will take (the first one timed, into the cache)
    assert "devosam embed: 6 planes to embed; timing the encoder on the first two" in err
    assert "for 4 planes left to embed (" in err
    assert "per plane, measured here, warm)" in err
    assert err.index("left to embed") < err.index("embedding:")  # before the bar opens
    assert "embedded 6 planes in" in captured.out
    assert len(list(cache.glob("*.npz"))) == 6 and sum(env["encodes"]) == 6
    assert main([*args, "--batch-size", "4", "--no-progress"]) == 0  # all cached
    assert sum(env["encodes"]) == 6
    captured = capsys.readouterr()
    assert "all 6 planes were already cached" in captured.out
    assert "devosam embed: all 6 planes already embedded (cache): no encoder work" in \
        captured.err
    out = env["tmp"] / "l.tif"
    assert main(["segment", env["stack"], "--model", env["ckpt"], "--cache-dir", str(cache),
                 "--plane", "0:1", "--box", "20,30,60,70", "--out", str(out)]) == 0
    assert sum(env["encodes"]) == 6 and out.exists()


def test_embed_default_cache_dir_and_errors(env, capsys):
    assert main(["embed", env["image"], "--model", env["ckpt"], "--no-progress"]) == 0
    assert len(list((env["tmp"] / "cache" / "embeddings").glob("*.npz"))) == 1
    capsys.readouterr()
    assert main(["embed", str(env["tmp"] / "nope.tif"), "--model", env["ckpt"]]) == 1
    assert "no image file" in capsys.readouterr().err
    assert main(["embed", env["image"], "--model", env["ckpt"], "--batch-size", "0"]) == 1
    err = capsys.readouterr().err
    assert "--batch-size" in err and len(err.strip().splitlines()) == 1


def test_an_unwritable_cache_does_not_stop_segment_but_fails_embed(env, capsys):
    from napari_devosam.engine.embedding_cache import CacheWriteWarning

    (env["tmp"] / "a-file").write_text("not a folder")
    cache = str(env["tmp"] / "a-file" / "emb")
    out = env["tmp"] / "l.tif"
    with pytest.warns(CacheWriteWarning) as caught:
        assert main(["segment", env["stack"], "--model", env["ckpt"], "--cache-dir", cache,
                     "--plane", "0:1", "--box", "20,30,60,70", "--out", str(out)]) == 0
    assert len(caught) == 1 and out.exists()
    capsys.readouterr()
    env["encodes"].clear()
    # embed exists to fill the cache: its folder is checked before any compute
    assert main(["embed", env["stack"], "--model", env["ckpt"], "--cache-dir", cache,
                 "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "cannot create" in err and len(err.strip().splitlines()) == 1
    assert env["encodes"] == []


def test_precision_bf16_reaches_the_encoder_and_has_its_own_cache_entries(env):
    from napari_devosam.models.precision import set_precision

    rc, out = _segment(env, "--box", "20,30,60,70", "--precision", "bf16")
    assert rc == 0 and env["encodes"] == [1]
    reference = tiny_sam(seed=SEED)
    set_precision(reference, "bf16")
    pred = Predictor(reference, cache_dir=None)
    pred.set_image(_plane())
    masks, _, _ = pred.predict(box=(20, 30, 60, 70))
    np.testing.assert_array_equal(tifffile.imread(out), masks[0].astype(np.uint16))
    assert _segment(env, "--box", "20,30,60,70", "--precision", "bf16")[0] == 0
    assert env["encodes"] == [1]  # the bf16 embedding came from the cache
    assert _segment(env, "--box", "20,30,60,70")[0] == 0
    assert env["encodes"] == [1, 1]  # fp32 is not served the bf16 embedding


def test_unknown_precision_is_a_usage_error(env, capsys):
    with pytest.raises(SystemExit) as exc:
        _segment(env, "--box", "20,30,60,70", "--precision", "int8")
    assert exc.value.code == 2
    assert "invalid choice: 'int8'" in capsys.readouterr().err


def test_precision_is_case_blind_and_warnings_are_one_line(env):
    import subprocess
    import sys

    out = env["tmp"] / "w.tif"
    code = ("import napari_devosam.models.precision as p\n"
            "p.cpu_has_fast_bf16 = lambda: False\n"
            "from napari_devosam.cli import main\n"
            f"raise SystemExit(main(['segment', {env['image']!r}, '--model', 'embryo_tiny', "
            f"'--box', '20,30,60,70', '--precision', 'BF16', '--out', {str(out)!r}]))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert "devosam segment: warning: this CPU has no bf16 hardware" in run.stderr
    assert "warnings.warn" not in run.stderr and ".py:" not in run.stderr


def test_auto_on_a_stack_says_how_long_before_the_first_plane(env, capsys):
    out = env["tmp"] / "auto.tif"
    assert main(["segment", env["stack"], "--auto", "--model", env["ckpt"], "--out",
                 str(out)]) == 0
    err = capsys.readouterr().err
    # nothing recorded yet: the first plane's whole step is timed, then the rest estimated
    assert ("devosam segment: 6 planes to segment; no time recorded for automatic "
            "segmentation here yet: timing the first plane") in err
    line = next(x for x in err.splitlines() if "measured on the first" in x)
    assert line.startswith("devosam segment: about ") and "left for 5 planes (" in line
    assert err.index(line) > err.index("segmenting planes: 1/6")
    assert sum(env["encodes"]) == 6
    # the next run reads the times recorded by this one: said before any encoder work
    assert main(["segment", env["stack"], "--auto", "--model", env["ckpt"], "--out",
                 str(out), "--cache-dir", str(env["tmp"] / "other")]) == 0
    err = capsys.readouterr().err
    assert "timing" not in err
    assert "for 6 planes to segment (embedding 6 planes at " in err
    assert "automatic segmentation" in err and "recorded on an earlier run here)" in err
    assert sum(env["encodes"]) == 12


def test_auto_refuses_a_huge_plane_before_loading_a_model(tmp_path, capsys):
    img = tmp_path / "huge.tif"
    tifffile.imwrite(img, np.zeros((4100, 4100), np.uint8))
    out = tmp_path / "labels.tif"
    assert main(["segment", str(img), "--auto", "--model", "/no/such/model.pth",
                 "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("devosam segment: error: the plane is 4,100 x 4,100 pixels")
    assert "bin it 2 x 2" in err and len(err.strip().splitlines()) == 1 and not out.exists()
