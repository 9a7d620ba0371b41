"""Downloads against a local HTTP server on 127.0.0.1: no internet, no real weights."""

from __future__ import annotations

import hashlib
import http.server
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from napari_devosam.models.download import (
    ChecksumError,
    DownloadError,
    ModelUnavailableError,
    checkpoint_path,
    download,
    ensure_checkpoint,
    is_cached,
    model_cache_dir,
)
from napari_devosam.models.registry import CHECKPOINTS, Checkpoint, base_url, get_checkpoint
from napari_devosam.utils.atomic import default_file_mode

PAYLOAD = os.urandom(300_000)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):  # noqa: N802
        type(self).requests.append(self.path)
        name = self.path.rsplit("/", 1)[-1]
        if name == "missing.bin":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        if name == "truncated.bin":
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 3])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(PAYLOAD)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def dead_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/file.bin"  # nothing listens there: connection refused


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVOSAM_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "models"


def run(gen):
    """Drive a progress generator; returns (progress list, result)."""
    seen = []
    while True:
        try:
            seen.append(next(gen))
        except StopIteration as stop:
            return seen, stop.value


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_good_download_yields_progress_and_verifies(server, tmp_path):
    dest = tmp_path / "out" / "w.pth"
    seen, result = run(download(f"{server}/w.bin", dest, SHA, chunk_size=65536))
    assert result == dest
    assert dest.read_bytes() == PAYLOAD
    assert seen[0] == (0, len(PAYLOAD)) and seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert leftovers(dest.parent) == ["w.pth"]
    assert dest.stat().st_mode & 0o777 == default_file_mode()  # not pooch's private 0600


def test_wrong_hash_leaves_nothing(server, tmp_path):
    dest = tmp_path / "w.pth"
    with pytest.raises(ChecksumError) as err:
        run(download(f"{server}/w.bin", dest, "0" * 64))
    msg = str(err.value)
    assert str(dest) in msg and "0" * 64 in msg and SHA in msg
    assert leftovers(tmp_path) == []


def test_wrong_hash_keeps_existing_file(server, tmp_path):
    dest = tmp_path / "w.pth"
    dest.write_bytes(b"old")
    with pytest.raises(ChecksumError):
        run(download(f"{server}/w.bin", dest, "0" * 64))
    assert dest.read_bytes() == b"old"
    assert leftovers(tmp_path) == ["w.pth"]


def test_truncated_response_leaves_nothing(server, tmp_path):
    dest = tmp_path / "w.pth"
    with pytest.raises(DownloadError, match="interrupted|failed"):
        run(download(f"{server}/truncated.bin", dest, SHA))
    assert leftovers(tmp_path) == []


def test_closing_generator_midway_leaves_nothing(server, tmp_path):
    dest = tmp_path / "w.pth"
    gen = download(f"{server}/w.bin", dest, SHA, chunk_size=4096)
    next(gen)
    next(gen)
    assert len(leftovers(tmp_path)) == 1  # the temporary file exists while downloading
    gen.close()
    assert leftovers(tmp_path) == []


def test_exception_in_consumer_leaves_nothing(server, tmp_path):
    dest = tmp_path / "w.pth"
    gen = download(f"{server}/w.bin", dest, SHA, chunk_size=4096)
    next(gen)
    with pytest.raises(KeyboardInterrupt):
        gen.throw(KeyboardInterrupt())
    assert leftovers(tmp_path) == []


def test_offline_is_a_download_error(dead_url, tmp_path):
    with pytest.raises(DownloadError, match="could not reach"):
        run(download(dead_url, tmp_path / "w.pth", SHA))
    assert leftovers(tmp_path) == []


def test_http_error(server, tmp_path):
    with pytest.raises(DownloadError, match="404"):
        run(download(f"{server}/missing.bin", tmp_path / "w.pth", SHA))
    assert leftovers(tmp_path) == []


def test_size_mismatch_without_hash_collision(server, tmp_path):
    # Content-Length is trusted over the registry size; a wrong registry size still fails by hash.
    with pytest.raises(ChecksumError):
        run(download(f"{server}/w.bin", tmp_path / "w.pth", "ab" * 32, size=10))


def test_model_cache_dir_env_and_default(monkeypatch, tmp_path):
    assert model_cache_dir() == tmp_path / "cache" / "models"
    monkeypatch.delenv("DEVOSAM_CACHE_DIR")
    default = model_cache_dir()
    assert default.name == "models" and "napari-devosam" in str(default)


def fake_entry(url: str, sha: str = SHA, size: int | None = len(PAYLOAD)) -> Checkpoint:
    return Checkpoint(name="fake", filename="fake.pth", known_hash=sha, size=size,
                      encoder_width=1, encoder_depth=1, url=url)


def test_ensure_checkpoint_downloads_then_reuses_cache(server, cache):
    _Handler.requests.clear()
    entry = fake_entry(f"{server}/fake.pth")
    seen, path = run(ensure_checkpoint(entry))
    assert path == cache / "fake.pth" and path.read_bytes() == PAYLOAD
    assert seen and seen[-1][0] == len(PAYLOAD)
    assert is_cached(entry)
    # Second call: no network (the URL now points nowhere), no progress, same file.
    dead = fake_entry("http://127.0.0.1:9/fake.pth")
    seen, again = run(ensure_checkpoint(dead))
    assert again == path and seen == []
    assert _Handler.requests == ["/fake.pth"]


def test_ensure_checkpoint_offline_error_explains(dead_url, cache):
    with pytest.raises(ModelUnavailableError) as err:
        run(ensure_checkpoint(fake_entry(dead_url)))
    msg = str(err.value)
    assert "'fake'" in msg and dead_url in msg and str(cache) in msg
    assert "DEVOSAM_CHECKPOINT" in msg and "local" in msg
    assert isinstance(err.value, RuntimeError)
    assert leftovers(cache) == []


def test_ensure_checkpoint_replaces_wrong_size_file(server, cache):
    cache.mkdir(parents=True)
    (cache / "fake.pth").write_bytes(b"partial")
    entry = fake_entry(f"{server}/fake.pth")
    assert not is_cached(entry)
    _, path = run(ensure_checkpoint(entry))
    assert path.read_bytes() == PAYLOAD


def test_ensure_checkpoint_wrong_hash(server, cache):
    with pytest.raises(ChecksumError):
        run(ensure_checkpoint(fake_entry(f"{server}/fake.pth", sha="1" * 64)))
    assert leftovers(cache) == []


def test_base_url_env_redirects_official_models(server, cache, monkeypatch):
    monkeypatch.setenv("DEVOSAM_MODEL_BASE_URL", f"{server}/mirror")
    assert base_url() == f"{server}/mirror/"
    vit_b = get_checkpoint("vit_b")
    assert vit_b.download_url() == f"{server}/mirror/sam_vit_b_01ec64.pth"
    _Handler.requests.clear()
    # The local server's bytes are not the real checkpoint: the hash check must catch it.
    with pytest.raises(ChecksumError):
        run(ensure_checkpoint("vit_b"))
    assert _Handler.requests == ["/mirror/sam_vit_b_01ec64.pth"]
    assert leftovers(cache) == []
    assert checkpoint_path("vit_b") == cache / "sam_vit_b_01ec64.pth"
    # a mirror holds every official file under its cache name, micro-sam's too
    assert get_checkpoint("vit_b_lm").download_url() == f"{server}/mirror/vit_b_lm.pt"


def test_per_model_url_override(monkeypatch):
    lm = get_checkpoint("vit_l_lm")
    assert lm.download_url() == lm.url
    monkeypatch.setenv("DEVOSAM_MODEL_URL_VIT_L_LM", "http://127.0.0.1:1/x.pt")
    assert lm.download_url() == "http://127.0.0.1:1/x.pt"
    assert get_checkpoint("vit_b_lm").download_url() == get_checkpoint("vit_b_lm").url


def test_registry_entries():
    assert set(CHECKPOINTS) == {"vit_b", "vit_l", "vit_h", "vit_b_lm", "vit_l_lm"}
    for name in ("vit_b", "vit_l", "vit_h"):
        c = CHECKPOINTS[name]
        algorithm, digest = c.known_hash.split(":")
        assert algorithm == "sha256" and len(digest) == 64 and int(digest, 16) >= 0
        assert c.size > 100_000_000 and c.arch == name and "Apache-2.0" in c.licence
        assert c.download_url().startswith("https://dl.fbaipublicfiles.com/segment_anything/")
    for name, arch, width in (("vit_b_lm", "vit_b", 768), ("vit_l_lm", "vit_l", 1024)):
        c = CHECKPOINTS[name]
        algorithm, digest = c.known_hash.split(":")
        assert algorithm == "xxh128" and len(digest) == 32 and int(digest, 16) >= 0
        assert c.arch == arch and c.encoder_width == width
        assert c.encoder_depth == CHECKPOINTS[arch].encoder_depth
        assert c.download_url().startswith("https://uk1s3.embassy.ebi.ac.uk/public-datasets/")
        assert c.download_url().endswith(f"/files/{arch}.pt")
        assert "CC-BY-4.0" in c.licence and "Archit" in c.citation
    assert CHECKPOINTS["vit_b_lm"].known_hash == "xxh128:fe9252a29f3f4ea53c15a06de471e186"
    assert CHECKPOINTS["vit_l_lm"].known_hash == "xxh128:017f20677997d628426dec80a8018f9d"
    with pytest.raises(ValueError, match="vit_b, vit_l, vit_h, vit_b_lm, vit_l_lm"):
        get_checkpoint("vit_x")


def test_import_does_not_download_or_load_torch():
    code = (
        "import sys, urllib.request\n"
        "def boom(*a, **k): raise SystemExit('network used at import')\n"
        "urllib.request.urlopen = boom\n"
        "import napari_devosam.models.registry, napari_devosam.models.download\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "import napari_devosam.models.loading, napari_devosam.models.decoder_files\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
