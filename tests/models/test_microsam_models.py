"""micro-sam's light-microscopy checkpoints by name (vit_b_lm, vit_l_lm): pooch downloads
checked by xxh128, against a local HTTP server on 127.0.0.1, then the safe loader.

The served file is a tiny SAM's weights in micro-sam's training layout ("model_state" with
"sam."-prefixed keys, beside an optimizer state); its xxh128 is computed here. The tiny
architecture is given to the loader as its builder (vit_b itself is too slow for unit tests).
"""

from __future__ import annotations

import http.server
import socket
import threading
from dataclasses import replace

import pytest
import torch
import xxhash

from napari_devosam.cli import main
from napari_devosam.models.download import (
    ChecksumError,
    DownloadError,
    ModelUnavailableError,
    download,
    is_cached,
)
from napari_devosam.models.loading import iter_load_model, load_model
from napari_devosam.models.registry import CHECKPOINTS
from napari_devosam.testing import tiny_sam

SEED = 7


class _Handler(http.server.BaseHTTPRequestHandler):
    payload = b""
    requests: list[str] = []

    def do_GET(self):  # noqa: N802
        type(self).requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def fake_file(tmp_path_factory):
    """A tiny SAM checkpoint in micro-sam's layout, and its xxh128."""
    state = tiny_sam(seed=SEED).state_dict()
    path = tmp_path_factory.mktemp("srv") / "vit_b.pt"
    torch.save({"model_state": {f"sam.{k}": v for k, v in state.items()},
                "optimizer_state": {"state": {}, "param_groups": []}, "iteration": 100}, path)
    data = path.read_bytes()
    return data, xxhash.xxh128(data).hexdigest()


@pytest.fixture(scope="module")
def server(fake_file):
    _Handler.payload = fake_file[0]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVOSAM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DEVOSAM_MODEL_BASE_URL", raising=False)
    return tmp_path / "cache" / "models"


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/vit_b.pt"  # nothing listens there: connection refused


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _with_hash(monkeypatch, digest: str) -> None:
    entry = replace(CHECKPOINTS["vit_b_lm"], known_hash=f"xxh128:{digest}")
    monkeypatch.setitem(CHECKPOINTS, "vit_b_lm", entry)


def test_good_xxh128_downloads_once_and_loads(server, fake_file, env, monkeypatch):
    data, digest = fake_file
    _with_hash(monkeypatch, digest)
    monkeypatch.setenv("DEVOSAM_MODEL_URL_VIT_B_LM", f"{server}/diplomatic-bug/vit_b.pt")
    _Handler.requests.clear()
    sam = load_model("vit_b_lm", "cpu", builder=tiny_sam, progress=False)
    assert _same_weights(sam, tiny_sam(seed=SEED))
    assert (env / "vit_b_lm.pt").read_bytes() == data and is_cached("vit_b_lm")
    assert _Handler.requests == ["/diplomatic-bug/vit_b.pt"]
    # cached now: no request, no progress, the same weights
    gen = iter_load_model("vit_b_lm", "cpu", builder=tiny_sam)
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert _same_weights(stop.value.value, sam) and len(_Handler.requests) == 1


def test_wrong_xxh128_is_refused_in_one_line(server, fake_file, env, monkeypatch):
    # the registry's real hash: the fake file cannot match it
    monkeypatch.setenv("DEVOSAM_MODEL_URL_VIT_B_LM", f"{server}/vit_b.pt")
    with pytest.raises(ChecksumError) as err:
        load_model("vit_b_lm", "cpu", builder=tiny_sam, progress=False)
    msg = str(err.value)
    assert "\n" not in msg and "wrong XXH128" in msg
    assert "fe9252a29f3f4ea53c15a06de471e186" in msg and fake_file[1] in msg
    assert not env.exists() or list(env.iterdir()) == []


def test_server_down_is_one_line(env, monkeypatch):
    url = _dead_url()
    monkeypatch.setenv("DEVOSAM_MODEL_URL_VIT_L_LM", url)
    with pytest.raises(ModelUnavailableError) as err:
        load_model("vit_l_lm", "cpu", progress=False)
    msg = str(err.value)
    assert "\n" not in msg and "'vit_l_lm'" in msg and url in msg and "could not reach" in msg
    assert str(env / "vit_l_lm.pt") in msg and "embryo" in msg
    assert not env.exists() or list(env.iterdir()) == []


def test_cli_error_is_one_line(env, monkeypatch, tmp_path, capsys):
    import numpy as np
    import tifffile

    tifffile.imwrite(tmp_path / "p.tif", np.zeros((32, 32), np.uint16))
    monkeypatch.setenv("DEVOSAM_MODEL_URL_VIT_B_LM", _dead_url())
    rc = main(["embed", str(tmp_path / "p.tif"), "--model", "vit_b_lm"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and err[0].startswith("devosam embed: error: model 'vit_b_lm'")


def test_missing_hash_library_fails_before_any_transfer(server, monkeypatch, tmp_path):
    import pooch.hashes

    algorithms = {k: v for k, v in pooch.hashes.ALGORITHMS_AVAILABLE.items()
                  if not k.startswith("xxh")}
    monkeypatch.setattr(pooch.hashes, "ALGORITHMS_AVAILABLE", algorithms)
    _Handler.requests.clear()
    gen = download(f"{server}/vit_b.pt", tmp_path / "w.pt", "xxh128:" + "0" * 32)
    with pytest.raises(DownloadError, match=r"xxh128 hash.*pip install xxhash"):
        next(gen)
    assert _Handler.requests == [] and list(tmp_path.iterdir()) == []


def test_sizeless_entry_trusts_any_nonempty_cached_file(env):
    assert CHECKPOINTS["vit_b_lm"].size is None
    env.mkdir(parents=True)
    (env / "vit_b_lm.pt").write_bytes(b"")
    assert not is_cached("vit_b_lm")
    (env / "vit_b_lm.pt").write_bytes(b"x")
    assert is_cached("vit_b_lm")
