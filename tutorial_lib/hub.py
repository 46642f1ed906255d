"""Checkpoints: safe loading (no pickled code is executed), a cached download for Colab, and the
SegFormer checkpoint conversions.

``load_state_dict`` reads ``.safetensors`` files with :mod:`safetensors`, and anything else with
``torch.load(..., weights_only=True)``, which refuses pickles that would run code.
``download_cached`` fetches a URL once into a cache folder; it is meant for Colab paths only and
is tested here with a local ``file://`` URL.
``segformer_from_hf_state_dict`` and ``segformer_from_nvlabs_state_dict`` convert released SegFormer
checkpoints (Hugging Face Hub layout, official NVlabs layout) into
:class:`tutorial_lib.models.segformer.SegFormer`; ``segformer_to_hf_state_dict``,
``segformer_hf_config`` and ``save_hf_pretrained`` export ours to the Hugging Face layout. Those live
in :mod:`tutorial_lib.hub_segformer` and are re-exported here.
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import tempfile
import urllib.parse
import urllib.request
from typing import Dict, Optional, Union

import torch

from .hub_segformer import (HF_LAYER_NORM_EPS, HF_SEGFORMER_RULES, NVLABS_SEGFORMER_RULES, convert_state_dict,
                            save_hf_pretrained, segformer_from_hf_state_dict, segformer_from_nvlabs_state_dict,
                            segformer_hf_config, segformer_to_hf_state_dict)

__all__ = ["load_state_dict", "save_state_dict", "download_cached", "default_cache_dir", "convert_state_dict",
           "segformer_from_hf_state_dict", "segformer_from_nvlabs_state_dict", "segformer_to_hf_state_dict",
           "segformer_hf_config", "save_hf_pretrained", "HF_SEGFORMER_RULES", "NVLABS_SEGFORMER_RULES",
           "HF_LAYER_NORM_EPS"]

PathLike = Union[str, os.PathLike]


def load_state_dict(path: PathLike) -> Dict[str, torch.Tensor]:
    """Load a state dict without executing pickled code.

    ``.safetensors`` → :func:`safetensors.torch.load_file`; other files → ``torch.load`` with
    ``weights_only=True``. A checkpoint that wraps its weights in ``{"state_dict": ...}`` or
    ``{"model": ...}`` (mmseg, NVlabs) is unwrapped. Raises ``ValueError`` for unsafe or
    malformed files.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise ValueError(f"load_state_dict: expected an existing file, got {str(path)!r}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle.UnpicklingError and friends
        raise ValueError(f"load_state_dict: {path.name} is not a plain tensor checkpoint and was refused "
                         f"(weights_only loading): {str(err).splitlines()[0]}") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"load_state_dict: expected a mapping of names to tensors in {path.name}, "
                         f"got {type(obj).__name__}")
    return dict(obj)


def save_state_dict(state_dict: Dict[str, torch.Tensor], path: PathLike) -> None:
    """Save tensors as ``.safetensors`` (contiguous copies; shared storage is not an issue)."""
    from safetensors.torch import save_file

    save_file({k: v.detach().contiguous().clone() for k, v in state_dict.items()}, str(path))


def default_cache_dir() -> pathlib.Path:
    """``$TUTORIAL_LIB_CACHE`` or ``~/.cache/tutorial_lib``."""
    return pathlib.Path(os.environ.get("TUTORIAL_LIB_CACHE", pathlib.Path.home() / ".cache" / "tutorial_lib"))


def download_cached(url: str, cache_dir: Optional[PathLike] = None, filename: Optional[str] = None,
                    sha256: Optional[str] = None) -> pathlib.Path:
    """Download ``url`` into ``cache_dir`` once and return the local path.

    An existing file is reused. ``sha256`` (hex), when given, is verified and a mismatch raises
    ``ValueError``. The download goes to a temporary file first, so an interrupted download never
    leaves a truncated file in the cache.
    """
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in {"http", "https", "file"}:
        raise ValueError(f"download_cached: expected an http(s):// or file:// URL, got {url!r}")
    cache = pathlib.Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / (filename or pathlib.PurePosixPath(parsed.path).name or "download")
    if not target.exists():
        with tempfile.NamedTemporaryFile(dir=cache, delete=False) as tmp:
            with urllib.request.urlopen(url) as response:  # noqa: S310 - scheme checked above
                shutil.copyfileobj(response, tmp)
        os.replace(tmp.name, target)
    if sha256 is not None:
        digest = hashlib.sha256(target.read_bytes()).hexdigest()
        if digest != sha256.lower():
            raise ValueError(f"download_cached: {target.name} has sha256 {digest}, expected {sha256}")
    return target
