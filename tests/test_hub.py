"""Safe checkpoint loading and the pinned, cached download (tested with local file:// URLs)."""
import hashlib
import io
import os
import pickle
import urllib.request

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


def _source(tmp_path):
    src = tmp_path / "weights.safetensors"
    save_state_dict({"w": torch.ones(2)}, src)
    return src, hashlib.sha256(src.read_bytes()).hexdigest()


def test_download_cached_with_file_url(tmp_path):
    src, digest = _source(tmp_path)
    cache = tmp_path / "cache"
    path = download_cached(src.as_uri(), cache_dir=cache, sha256=digest)
    assert path.parent == cache and path.read_bytes() == src.read_bytes()
    assert sorted(p.name for p in cache.iterdir()) == ["weights.safetensors"]  # no temporary file left
    src.unlink()  # later calls must not touch the source again
    assert download_cached(src.as_uri(), cache_dir=cache, sha256=digest.upper()) == path  # re-verified, reused
    assert download_cached(src.as_uri(), cache_dir=cache) == path  # file:// without a digest: reused as is


def test_download_cached_wrong_hash_caches_nothing(tmp_path):
    src, digest = _source(tmp_path)
    cache = tmp_path / "cache"
    wrong = "0" * 64
    with pytest.raises(ValueError) as err:
        download_cached(src.as_uri(), cache_dir=cache, sha256=wrong)
    message = str(err.value)
    assert "weights.safetensors" in message and f"expected sha256 {wrong}, got {digest}" in message
    assert "nothing was cached" in message
    assert list(cache.iterdir()) == []  # neither the file nor the temporary download
    assert download_cached(src.as_uri(), cache_dir=cache, sha256=digest).exists()  # the right digest still works


def test_download_cached_detects_a_corrupted_cache(tmp_path):
    src, digest = _source(tmp_path)
    cache = tmp_path / "cache"
    path = download_cached(src.as_uri(), cache_dir=cache, sha256=digest)
    path.write_bytes(path.read_bytes()[:-3])  # truncated on disk
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(ValueError) as err:
        download_cached(src.as_uri(), cache_dir=cache, sha256=digest)
    message = str(err.value)
    assert str(path) in message and f"expected sha256 {digest}, got {actual}" in message and "Delete it" in message
    assert path.exists()  # never deleted silently
    path.unlink()
    assert download_cached(src.as_uri(), cache_dir=cache, sha256=digest).read_bytes() == src.read_bytes()


def test_download_cached_interrupted_download_leaves_nothing(tmp_path, monkeypatch):
    src, digest = _source(tmp_path)
    cache = tmp_path / "cache"

    class Broken(io.BytesIO):
        def read(self, n=-1):
            if self.tell():
                raise OSError("connection reset")
            return super().read(4)

    monkeypatch.setattr(urllib.request, "urlopen", lambda url: Broken(src.read_bytes()))
    with pytest.raises(OSError, match="connection reset"):
        download_cached("https://example.invalid/weights.safetensors", cache_dir=cache, sha256=digest)
    assert list(cache.iterdir()) == []


def test_download_cached_refuses_unpinned_and_malformed_requests(tmp_path, monkeypatch):
    def no_network(url):
        raise AssertionError("no request may be made")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    cache = tmp_path / "cache"
    for url in ("https://example.invalid/model.safetensors", "http://example.invalid/model.safetensors"):
        with pytest.raises(ValueError, match=r"expected sha256= .* got none"):
            download_cached(url, cache_dir=cache)
    with pytest.raises(ValueError, match="64 hexadecimal digits, got 'abc'"):
        download_cached("https://example.invalid/m.bin", cache_dir=cache, sha256="abc")
    with pytest.raises(ValueError, match="plain file name"):
        download_cached("https://example.invalid/m.bin", cache_dir=cache, filename="../m.bin", sha256="0" * 64)
    with pytest.raises(ValueError, match="URL"):
        download_cached("ftp://example.invalid/x", cache_dir=cache)
    assert not cache.exists()
