"""load_pretrained_vit_pos_embed: chapter 06's pinned download of a released ViT's E_pos, offline.

No network: a small safetensors file in the Hugging Face ViT layout stands in for
``google/vit-base-patch16-224``; a test-only registry entry pins its SHA-256 and ``base_url`` points
at its ``file://`` folder, so the real path (download, verify, cache, read one tensor without pickle)
runs end to end.
"""
from __future__ import annotations

import hashlib
import pickle
import re

import pytest
import torch

from tutorial_lib.hub import (
    PRETRAINED_VIT,
    PinnedCheckpoint,
    load_pretrained_vit_pos_embed,
    load_tensor,
    save_state_dict,
)

KEY = "vit.embeddings.position_embeddings"
FAKE_REVISION = "0123456789abcdef0123456789abcdef01234567"


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def fake_vit(tmp_path, monkeypatch):
    torch.manual_seed(0)
    pos = torch.randn(1, 1 + 4 * 4, 8)
    folder = tmp_path / "hub"
    folder.mkdir()
    save_state_dict({KEY: pos, "vit.embeddings.cls_token": torch.randn(1, 1, 8)},
                    folder / "model.safetensors")
    pin = PinnedCheckpoint(repo="test/vit-fake", revision=FAKE_REVISION, variant=KEY,
                           files={"model.safetensors": sha256(folder / "model.safetensors")})
    monkeypatch.setitem(PRETRAINED_VIT, "test", pin)
    return pos, folder, pin


def test_real_entry_is_pinned_to_a_commit_and_a_hash():
    pin = PRETRAINED_VIT["b16-224"]
    assert pin.repo == "google/vit-base-patch16-224" and pin.variant == KEY
    assert re.fullmatch(r"[0-9a-f]{40}", pin.revision)
    assert list(pin.files) == ["model.safetensors"]
    assert re.fullmatch(r"[0-9a-f]{64}", pin.files["model.safetensors"])
    assert pin.url("model.safetensors").startswith(f"https://huggingface.co/{pin.repo}/resolve/{pin.revision}/")


def test_download_path_reads_e_pos_from_a_local_file(fake_vit, tmp_path):
    pos, folder, pin = fake_vit
    cache = tmp_path / "cache"
    got = load_pretrained_vit_pos_embed("test", cache_dir=cache, base_url=folder.as_uri())
    torch.testing.assert_close(got, pos, rtol=0, atol=0)
    cached = cache / pin.cache_name("model.safetensors")
    assert cached.is_file() and sha256(cached) == pin.files["model.safetensors"]
    # a second call reads the cache (the source may be gone)
    (folder / "model.safetensors").unlink()
    torch.testing.assert_close(load_pretrained_vit_pos_embed("test", cache_dir=cache, base_url=folder.as_uri()), pos)


def test_a_changed_file_is_refused_and_not_cached(fake_vit, tmp_path):
    pos, folder, pin = fake_vit
    save_state_dict({KEY: pos + 1}, folder / "model.safetensors")  # other bytes, same name
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="does not match"):
        load_pretrained_vit_pos_embed("test", cache_dir=cache, base_url=folder.as_uri())
    assert not any(cache.glob("*model.safetensors"))


def test_unknown_name_and_bad_base_url_are_refused():
    with pytest.raises(ValueError, match="expected one of"):
        load_pretrained_vit_pos_embed("vit-z")
    with pytest.raises(ValueError, match="URL string"):
        load_pretrained_vit_pos_embed("b16-224", base_url=3)


class _Boom:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_load_tensor_reads_one_tensor_and_never_runs_pickled_code(tmp_path, capsys):
    path = tmp_path / "w.safetensors"
    save_state_dict({"a": torch.ones(2), "b": torch.zeros(3)}, path)
    torch.testing.assert_close(load_tensor(path, "b"), torch.zeros(3))
    with pytest.raises(ValueError, match="named 'c'"):
        load_tensor(path, "c")
    evil = tmp_path / "w.pt"
    evil.write_bytes(pickle.dumps({"a": _Boom()}))
    with pytest.raises(ValueError, match="refused"):
        load_tensor(evil, "a")
    assert "pickled code ran" not in capsys.readouterr().out
