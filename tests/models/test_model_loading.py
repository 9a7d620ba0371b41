"""Loading local and official checkpoints, refusing bad files."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from dataclasses import replace

import pytest
import torch
from safetensors.torch import save_file

from napari_devosam.models.download import ModelUnavailableError
from napari_devosam.models.identity import architecture_name, encoder_hash
from napari_devosam.models.loading import (
    build_from_state_dict,
    iter_load_model,
    load_model,
    read_state_dict,
)
from napari_devosam.models.registry import CHECKPOINTS
from napari_devosam.testing import random_sam, tiny_sam


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv("DEVOSAM_CHECKPOINT", raising=False)
    monkeypatch.delenv("DEVOSAM_DEVICE", raising=False)
    monkeypatch.setenv("DEVOSAM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DEVOSAM_MODEL_BASE_URL", f"http://127.0.0.1:{_free_port()}/")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def tiny_file(tmp_path):
    path = tmp_path / "tiny.pt"
    torch.save(tiny_sam(seed=1).state_dict(), path)
    return path


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].cpu(), sb[k].cpu()) for k in sa)


def test_local_tiny_checkpoint_with_builder(tiny_file):
    sam = load_model(tiny_file, device="cpu", builder=tiny_sam)
    assert same_weights(sam, tiny_sam(seed=1))
    assert not sam.training and sam.device == torch.device("cpu")
    assert architecture_name(sam) == "custom-32"


@pytest.mark.parametrize("wrap", ["model", "state_dict", "module"])
def test_nested_and_prefixed_state_dicts(tmp_path, wrap):
    state = tiny_sam(seed=2).state_dict()
    if wrap == "module":
        obj = {f"module.{k}": v for k, v in state.items()}
    else:
        obj = {wrap: state, "epoch": 3}
    torch.save(obj, tmp_path / "x.pth")
    assert same_weights(load_model(tmp_path / "x.pth", "cpu", builder=tiny_sam), tiny_sam(seed=2))


LAYOUTS = {
    # micro-sam / torch_em training checkpoints
    "micro_sam": lambda s: {"model_state": {f"sam.{k}": v for k, v in s.items()},
                            "optimizer_state": {"state": {}, "param_groups": []}, "epoch": 4},
    "torch_em_plain": lambda s: {"model_state": s, "optimizer_state": {}, "iteration": 10},
    "model_state_dict": lambda s: {"model_state_dict": s, "epoch": 1},
    "dataparallel_sam": lambda s: {"state_dict": {f"module.sam.{k}": v for k, v in s.items()}},
    "lightning_model": lambda s: {"state_dict": {f"model.{k}": v for k, v in s.items()}},
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_checkpoints_of_other_tools_load(tmp_path, layout):
    """The kind: training tools wrap SAM's weights in a dict and prefix its keys."""
    torch.save(LAYOUTS[layout](tiny_sam(seed=5).state_dict()), tmp_path / "x.pt")
    assert same_weights(load_model(tmp_path / "x.pt", "cpu", builder=tiny_sam), tiny_sam(seed=5))


def test_unknown_layout_is_named(tmp_path):
    torch.save({"net": {"a.weight": torch.zeros(2)}, "optimizer_state": {}}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match=r"known layout: top-level keys 'net' \(1 entries\)"):
        load_model(tmp_path / "x.pt", "cpu", builder=tiny_sam)


def test_a_folder_given_as_the_model_is_named_a_folder(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder, not a checkpoint file"):
        load_model(tmp_path, "cpu", builder=tiny_sam)


def test_a_decoder_file_given_as_the_model_says_to_give_it_as_the_decoder(tmp_path):
    """A fine-tuned decoder passed as the model (trial 16: ``devosam eval --model
    ft_dec.safetensors``) is named as what it is, with where it goes."""
    from napari_devosam.models.decoder_files import save_decoder

    path = tmp_path / "ft_dec.safetensors"
    save_decoder(tiny_sam(seed=5), path)
    with pytest.raises(ValueError, match=r"holds a mask decoder only .*--decoder FILE"):
        load_model(path, "cpu", builder=tiny_sam)
    torch.save({"model": {f"mask_decoder.{k}": v for k, v in
                          tiny_sam(seed=5).mask_decoder.state_dict().items()}}, tmp_path / "d.pt")
    with pytest.raises(ValueError, match="holds a mask decoder only"):
        load_model(tmp_path / "d.pt", "cpu", builder=tiny_sam)


def test_safetensors_checkpoint(tmp_path):
    save_file(tiny_sam(seed=3).state_dict(), str(tmp_path / "w.safetensors"))
    sam = load_model(str(tmp_path / "w.safetensors"), "cpu", builder=tiny_sam)
    assert same_weights(sam, tiny_sam(seed=3))


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_code_running_pickle_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"
    state = dict(tiny_sam().state_dict())
    state["payload"] = _Evil(marker)
    torch.save(state, tmp_path / "evil.pth")
    with pytest.raises(ValueError, match=r"refusing to load .*evil\.pth.*run code"):
        load_model(tmp_path / "evil.pth", "cpu", builder=tiny_sam)
    assert not marker.exists()


def test_truncated_checkpoint(tmp_path, tiny_file):
    data = tiny_file.read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.pth is truncated or corrupt"):
        load_model(tmp_path / "cut.pth", "cpu", builder=tiny_sam)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"not a checkpoint at all" * 10, "is not a PyTorch checkpoint"),
    ],
)
def test_non_checkpoint_files(tmp_path, content, message):
    (tmp_path / "bad.pth").write_bytes(content)
    with pytest.raises(ValueError, match=rf"bad\.pth.*{message}"):
        read_state_dict(tmp_path / "bad.pth")


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (torch.zeros(3), "holds a Tensor, not a SAM state dict"),
        ({"weight": torch.zeros(3), "bias": torch.zeros(1)}, "is not a SAM checkpoint"),
        ({"image_encoder.patch_embed.proj.weight": torch.zeros(1), "n": 3}, "'n' is not a tensor"),
    ],
)
def test_non_sam_contents(tmp_path, obj, message):
    torch.save(obj, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=rf"other\.pt.*{message}"):
        load_model(tmp_path / "other.pt", "cpu")


def test_unknown_width_without_builder(tiny_file):
    with pytest.raises(ValueError, match=r"tiny\.pt has an image encoder 32 wide.*builder"):
        load_model(tiny_file, "cpu")


def test_official_width_wrong_depth():
    state = {"image_encoder.patch_embed.proj.weight": torch.zeros(768, 3, 16, 16),
             "image_encoder.blocks.0.norm1.weight": torch.zeros(768)}
    with pytest.raises(ValueError, match="768 wide with 1 blocks"):
        build_from_state_dict(state, source="odd.pth")


def test_shape_and_key_mismatches_name_the_problem(tmp_path):
    state = dict(tiny_sam().state_dict())
    state["mask_decoder.iou_token.weight"] = torch.zeros(2, 256)
    torch.save(state, tmp_path / "shape.pt")
    with pytest.raises(ValueError, match=r"shape\.pt does not match.*iou_token.weight is \(2, 256"):
        load_model(tmp_path / "shape.pt", "cpu", builder=tiny_sam)
    del state["mask_decoder.iou_token.weight"]
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "keys.pt")
    with pytest.raises(ValueError, match=r"1 missing keys.*1 unexpected keys \(e.g. extra.weight"):
        load_model(tmp_path / "keys.pt", "cpu", builder=tiny_sam)


def test_missing_files_and_unknown_names(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth does not exist"):
        load_model(tmp_path / "nope.pth", "cpu")
    with pytest.raises(ValueError, match="unknown model 'vit_x'"):
        load_model("vit_x", "cpu")
    with pytest.raises(ValueError, match="unknown device"):
        load_model("vit_b", "gpu")


def test_env_checkpoint_is_the_default(tiny_file, monkeypatch, tmp_path):
    monkeypatch.setenv("DEVOSAM_CHECKPOINT", str(tiny_file))
    assert same_weights(load_model(None, "cpu", builder=tiny_sam), tiny_sam(seed=1))
    monkeypatch.setenv("DEVOSAM_CHECKPOINT", str(tmp_path / "gone.pth"))
    with pytest.raises(FileNotFoundError, match="DEVOSAM_CHECKPOINT names .*gone.pth"):
        load_model(None, "cpu")


def test_offline_named_model_explains(tiny_file, monkeypatch, tmp_path):
    # DEVOSAM_CHECKPOINT holds another architecture, so "vit_b" needs the (unreachable) server.
    monkeypatch.setenv("DEVOSAM_CHECKPOINT", str(tiny_file))
    with pytest.raises(ModelUnavailableError) as err:
        load_model("vit_b", "cpu", progress=False)
    msg = str(err.value)
    assert "'vit_b'" in msg and "sam_vit_b_01ec64.pth" in msg and "127.0.0.1" in msg
    assert str(tmp_path / "cache" / "models") in msg and "DEVOSAM_CHECKPOINT" in msg


def _serve(folder):
    handler = type("H", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: handler(*a, directory=str(folder)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def test_named_model_downloads_with_progress_then_uses_cache(tiny_file, monkeypatch, tmp_path,
                                                              capsys):
    data = tiny_file.read_bytes()
    served = tmp_path / "srv"
    served.mkdir()
    (served / "sam_vit_b_01ec64.pth").write_bytes(data)
    entry = replace(CHECKPOINTS["vit_b"], known_hash=hashlib.sha256(data).hexdigest(),
                    size=len(data))
    monkeypatch.setitem(CHECKPOINTS, "vit_b", entry)
    httpd = _serve(served)
    try:
        monkeypatch.setenv("DEVOSAM_MODEL_BASE_URL", f"http://127.0.0.1:{httpd.server_address[1]}")
        sam = load_model("vit_b", "cpu", builder=tiny_sam, progress=True)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert same_weights(sam, tiny_sam(seed=1))
    assert "downloading SAM checkpoint" in capsys.readouterr().err
    cached = tmp_path / "cache" / "models" / "sam_vit_b_01ec64.pth"
    assert cached.read_bytes() == data
    # Server gone: the cached file is used without any network access.
    again = list_progress(iter_load_model("vit_b", "cpu", builder=tiny_sam))
    assert again[0] == [] and same_weights(again[1], sam)


def list_progress(gen):
    seen = []
    while True:
        try:
            seen.append(next(gen))
        except StopIteration as stop:
            return seen, stop.value


def test_closing_iter_load_model_leaves_no_file(tiny_file, monkeypatch, tmp_path):
    data = tiny_file.read_bytes()
    served = tmp_path / "srv"
    served.mkdir()
    (served / "sam_vit_b_01ec64.pth").write_bytes(data)
    entry = replace(CHECKPOINTS["vit_b"], known_hash=hashlib.sha256(data).hexdigest(),
                    size=len(data))
    monkeypatch.setitem(CHECKPOINTS, "vit_b", entry)
    httpd = _serve(served)
    try:
        monkeypatch.setenv("DEVOSAM_MODEL_BASE_URL", f"http://127.0.0.1:{httpd.server_address[1]}")
        gen = iter_load_model("vit_b", "cpu", builder=tiny_sam)
        assert next(gen) == (0, len(data))
        gen.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    models = tmp_path / "cache" / "models"
    assert list(models.iterdir()) == []


@pytest.mark.slow
def test_vit_b_checkpoint_round_trip(tmp_path):
    original = random_sam("vit_b", seed=4)
    path = tmp_path / "vit_b_random.pth"
    torch.save(original.state_dict(), path)
    sam = load_model(path, "cpu")
    assert architecture_name(sam) == "vit_b" and not sam.training
    assert same_weights(sam, original)
    assert torch.equal(sam.pixel_mean, original.pixel_mean)
    assert torch.equal(sam.pixel_std, original.pixel_std)
    assert encoder_hash(sam) == encoder_hash(original)
    # The loaded model decodes exactly like the original (random embedding, one box).
    emb = torch.randn(1, 256, 64, 64)
    box = torch.tensor([[100.0, 200.0, 400.0, 500.0]])
    outs = []
    for m in (sam, original):
        with torch.no_grad():
            sparse, dense = m.prompt_encoder(points=None, boxes=box, masks=None)
            outs.append(m.mask_decoder(emb, m.prompt_encoder.get_dense_pe(), sparse, dense, False))
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])
    state = dict(original.state_dict())
    del state["image_encoder.neck.0.weight"]
    with pytest.raises(ValueError, match=r"x.pth does not match the vit_b.*neck.0.weight"):
        build_from_state_dict(state, source="x.pth")


@pytest.mark.slow
def test_env_checkpoint_of_matching_architecture_serves_named_model(tmp_path, monkeypatch):
    path = tmp_path / "managed.pth"
    torch.save(random_sam("vit_b", seed=5).state_dict(), path)
    monkeypatch.setenv("DEVOSAM_CHECKPOINT", str(path))
    sam = load_model("vit_b", "cpu", progress=False)  # no server: must not try to download
    assert architecture_name(sam) == "vit_b"
    with pytest.raises(ModelUnavailableError):
        load_model("vit_l", "cpu", progress=False)
