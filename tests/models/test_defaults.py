"""The one default model rule: $DEVOSAM_CHECKPOINT, else the best cached official checkpoint
(microscopy-trained first), else the bundled model; never a download."""

from __future__ import annotations

import pytest

from napari_devosam.models import registry
from napari_devosam.models.defaults import PREFERENCE, default_model, resolve_model
from napari_devosam.models.download import checkpoint_path, is_cached
from napari_devosam.models.registry import CHECKPOINTS, recommended_bundled

BUNDLED = recommended_bundled()  # "embryo" once registered, "embryo_tiny" until then


def fake_cached(name: str) -> None:
    """A file at the checkpoint's cache path that ``is_cached`` accepts: sparse at the
    registry's size (no disk used), or a few bytes where the registry states no size."""
    path = checkpoint_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"x")
        size = CHECKPOINTS[name].size
        if size is not None:
            f.truncate(size)
    assert is_cached(name)


def test_empty_cache_gives_the_bundled_model():
    assert BUNDLED in ("embryo", "embryo_tiny")
    rule = default_model()
    assert (rule.model, rule.source) == (BUNDLED, "bundled")
    assert rule.describe() == f"model: {BUNDLED} (bundled; no official checkpoint cached)"


def test_preference_order_microscopy_first():
    assert PREFERENCE == ("vit_l_lm", "vit_b_lm", "vit_h", "vit_l", "vit_b")
    expected = []
    for name in reversed(PREFERENCE):  # cache the worst first: each new one takes over
        fake_cached(name)
        rule = default_model()
        expected.append(name)
        assert (rule.model, rule.source) == (name, "cached"), expected
    assert default_model().describe() == "model: vit_l_lm (official microscopy-trained, cached)"


def test_meta_checkpoint_beats_bundled_and_partial_files_do_not_count():
    path = checkpoint_path("vit_b")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"half a download")  # wrong size: not cached
    assert default_model().model == BUNDLED
    fake_cached("vit_b")
    assert default_model().describe() == "model: vit_b (official cached)"


def test_env_checkpoint_comes_first(monkeypatch, tmp_path):
    fake_cached("vit_b_lm")
    monkeypatch.setenv("DEVOSAM_CHECKPOINT", str(tmp_path / "mine.pth"))
    rule = default_model()
    assert (rule.model, rule.source) == (str(tmp_path / "mine.pth"), "env")
    assert "DEVOSAM_CHECKPOINT" in rule.describe()


@pytest.mark.parametrize("where", ["bundled", "alias"])
def test_embryo_is_picked_once_registered(monkeypatch, where):
    if where == "bundled":
        monkeypatch.setitem(registry.BUNDLED, "embryo", registry.BUNDLED["embryo_tiny"])
    else:
        monkeypatch.setitem(registry.ALIASES, "embryo", "embryo_tiny")
    assert default_model().model == "embryo"
    fake_cached("vit_b_lm")
    assert default_model().model == "vit_b_lm"


def test_resolve_model_keeps_named_models():
    assert resolve_model("vit_h") == ("vit_h", None)
    assert resolve_model("/some/file.pth") == ("/some/file.pth", None)
    value, rule = resolve_model(None)
    assert value == BUNDLED and rule.source == "bundled"


def test_load_model_none_follows_the_rule_without_network(monkeypatch):
    import socket

    from napari_devosam.models.identity import architecture_name
    from napari_devosam.models.loading import iter_load_model

    def no_network(*args, **kwargs):
        raise AssertionError("the default rule must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    gen = iter_load_model(None, "cpu")
    with pytest.raises(StopIteration) as stop:  # no download progress at all
        next(gen)
    assert architecture_name(stop.value.value).startswith("custom-")  # the bundled model
