"""Safe checkpoint loading and the cached download (tested with a local file:// URL)."""
import hashlib
import os
import pickle

import pytest
import torch

from tutorial_lib.hub import download_cached, load_state_dict, save_state_dict


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch PWNED_BY_PICKLE",))


def test_refuses_a_pickle_that_would_execute_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"weight": _Exploit()}, f)
    with pytest.raises(ValueError, match="refused"):
        load_state_dict(path)
    assert not (tmp_path / "PWNED_BY_PICKLE").exists()


def test_torch_checkpoint_roundtrip_and_unwrapping(tmp_path):
    sd = {"a": torch.arange(3.0), "b": torch.ones(2, 2)}
    torch.save({"state_dict": sd, "meta": {"epoch": 3}}, tmp_path / "ckpt.pth")
    loaded = load_state_dict(tmp_path / "ckpt.pth")
    assert set(loaded) == {"a", "b"} and torch.equal(loaded["a"], sd["a"])


def test_safetensors_roundtrip(tmp_path):
    sd = {"w": torch.randn(3, 4)}
    save_state_dict(sd, tmp_path / "m.safetensors")
    assert torch.equal(load_state_dict(tmp_path / "m.safetensors")["w"], sd["w"])


def test_missing_file_and_non_tensor_content(tmp_path):
    with pytest.raises(ValueError, match="existing file"):
        load_state_dict(tmp_path / "nope.pth")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="mapping of names to tensors"):
        load_state_dict(tmp_path / "list.pth")


def test_download_cached_with_file_url(tmp_path):
    src = tmp_path / "weights.safetensors"
    save_state_dict({"w": torch.ones(2)}, src)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    cache = tmp_path / "cache"
    path = download_cached(src.as_uri(), cache_dir=cache, sha256=digest)
    assert path.parent == cache and path.read_bytes() == src.read_bytes()
    src.unlink()  # the second call must not touch the source again
    assert download_cached(src.as_uri(), cache_dir=cache) == path
    with pytest.raises(ValueError, match="sha256"):
        download_cached(src.as_uri(), cache_dir=cache, sha256="0" * 64)
    with pytest.raises(ValueError, match="URL"):
        download_cached("ftp://example.invalid/x", cache_dir=cache)
