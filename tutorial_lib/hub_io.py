"""Checkpoint files: safe loading (no pickled code is executed) and a pinned,
cached download for Colab.

``load_state_dict`` reads ``.safetensors`` files with :mod:`safetensors`, and
anything else with ``torch.load(..., weights_only=True)``, which refuses pickles
that would run code. ``download_cached`` fetches a URL once into a cache folder and
checks its SHA-256 before the file enters the cache; it is meant for Colab paths
only and is tested here with local ``file://`` URLs.

This is the low-level layer of the hub modules: it imports none of them.
:mod:`tutorial_lib.hub` is the public front that re-exports every name.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import re
import tempfile
import urllib.parse
import urllib.request
from typing import Dict, Optional, Union

import torch

__all__ = [
    "load_state_dict",
    "load_tensor",
    "save_state_dict",
    "download_cached",
    "default_cache_dir",
]

PathLike = Union[str, os.PathLike]


def load_state_dict(path: PathLike) -> Dict[str, torch.Tensor]:
    """Load a state dict without executing pickled code.

    ``.safetensors`` → :func:`safetensors.torch.load_file`; other files →
    ``torch.load`` with ``weights_only=True``. A checkpoint that wraps its weights
    in ``{"state_dict": ...}`` or ``{"model": ...}`` (mmseg, NVlabs) is unwrapped.
    Raises ``ValueError`` for unsafe or malformed files.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise ValueError(
            f"load_state_dict: expected an existing file, got {str(path)!r}"
        )
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle.UnpicklingError and friends
        raise ValueError(
            f"load_state_dict: {path.name} is not a plain tensor checkpoint and "
            "was refused "
            f"(weights_only loading): {str(err).splitlines()[0]}"
        ) from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(
        isinstance(v, torch.Tensor) for v in obj.values()
    ):
        raise ValueError(
            "load_state_dict: expected a mapping of names to tensors in "
            f"{path.name}, "
            f"got {type(obj).__name__}"
        )
    return dict(obj)


def load_tensor(path: PathLike, name: str) -> torch.Tensor:
    """One tensor of a checkpoint, without executing pickled code.

    A ``.safetensors`` file is opened with :func:`safetensors.safe_open` and only
    ``name`` is read (a 768-number row of a 346 MB file costs no more than its own
    bytes); any other file goes through :func:`load_state_dict`. Raises
    ``ValueError`` naming the file's keys when ``name`` is not among them.
    """
    path = pathlib.Path(path)
    if path.suffix == ".safetensors" and path.is_file():
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            keys = list(f.keys())
            if name in keys:
                return f.get_tensor(name)
    else:
        state = load_state_dict(path)
        keys = list(state)
        if name in state:
            return state[name]
    shown = ", ".join(sorted(keys)[:5]) + (", ..." if len(keys) > 5 else "")
    raise ValueError(
        f"load_tensor: expected a tensor named {name!r} in {path.name}, got keys "
        f"{shown}"
    )


def save_state_dict(state_dict: Dict[str, torch.Tensor], path: PathLike) -> None:
    """Save tensors as ``.safetensors`` (contiguous copies; shared storage is not an
    issue)."""
    from safetensors.torch import save_file

    save_file(
        {k: v.detach().contiguous().clone() for k, v in state_dict.items()},
        str(path),
    )


def default_cache_dir() -> pathlib.Path:
    """``$TUTORIAL_LIB_CACHE`` or ``~/.cache/tutorial_lib``."""
    return pathlib.Path(
        os.environ.get(
            "TUTORIAL_LIB_CACHE", pathlib.Path.home() / ".cache" / "tutorial_lib"
        )
    )


_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_CHUNK = 1 << 20


def _sha256_of(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_cached(
    url: str,
    cache_dir: Optional[PathLike] = None,
    filename: Optional[str] = None,
    sha256: Optional[str] = None,
) -> pathlib.Path:
    """Download ``url`` into ``cache_dir`` once, verified against ``sha256``, and
    return the local path.

    ``sha256`` (64 hex digits) is **required for http(s) URLs**: what a URL serves
    can change or be tampered with, and the digest pins the exact bytes the book was
    checked with. It is optional for ``file://`` URLs, a local file the user already
    controls (tests, offline copies).

    The download streams into a temporary file in ``cache_dir`` and is hashed as it
    is written; only a file whose digest matches is moved into the cache
    (atomically), so a wrong or interrupted download leaves nothing behind, and a
    mismatch raises ``ValueError`` naming the file, the expected and the actual
    digest. A cached file is re-hashed on every call that gives ``sha256``; if it no
    longer matches (a damaged file, or another file under the same name),
    ``ValueError`` gives its path and asks you to delete it — it is never deleted or
    replaced silently, because the mismatch may also be a wrong digest in the
    calling code.
    """
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in {"http", "https", "file"}:
        raise ValueError(
            f"download_cached: expected an http(s):// or file:// URL, got {url!r}"
        )
    if sha256 is None and parsed.scheme != "file":
        raise ValueError(
            "download_cached: expected sha256= (64 hex digits) for the "
            f"{parsed.scheme} URL {url!r}, "
            "got none; a download is cached only when its content is pinned (what "
            "a URL serves can "
            f"change), so pass the published SHA-256 of the file"
        )
    if sha256 is not None and not (
        isinstance(sha256, str) and _SHA256.fullmatch(sha256)
    ):
        raise ValueError(
            "download_cached: expected sha256 as 64 hexadecimal digits, got "
            f"{sha256!r}"
        )
    expected = sha256.lower() if sha256 is not None else None
    name = (
        filename
        if filename is not None
        else (pathlib.PurePosixPath(parsed.path).name or "download")
    )
    if name in {"", ".", ".."} or "/" in name or "\\" in name:
        raise ValueError(
            "download_cached: expected a plain file name for the cache, got "
            f"{name!r}"
        )
    cache = (
        pathlib.Path(cache_dir) if cache_dir is not None else default_cache_dir()
    )
    target = cache / name
    if target.exists():
        if expected is not None:
            actual = _sha256_of(target)
            if actual != expected:
                raise ValueError(
                    f"download_cached: the cached file {str(target)!r} does not "
                    "match: expected sha256 "
                    f"{expected}, got {actual}; it is damaged or another file has "
                    "the same name. "
                    f"Delete it and call again to download it afresh"
                )
        return target
    cache.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.NamedTemporaryFile(
        dir=cache, prefix=f".{name}.", suffix=".part", delete=False
    )
    try:
        digest = hashlib.sha256()
        # the URL's scheme was checked above: http, https or file only
        with tmp, urllib.request.urlopen(url) as response:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                digest.update(chunk)
                tmp.write(chunk)
        actual = digest.hexdigest()
        if expected is not None and actual != expected:
            raise ValueError(
                f"download_cached: {name} from {url} does not match: expected "
                f"sha256 {expected}, got "
                f"{actual}; nothing was cached (a changed or wrong file, or a "
                "wrong digest)"
            )
        os.replace(tmp.name, target)
    finally:
        if os.path.exists(tmp.name):
            os.unlink(tmp.name)
    return target
