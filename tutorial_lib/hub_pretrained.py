"""Pretrained SegFormer checkpoints pinned to a Hugging Face Hub commit and to the
SHA-256 of each file.

:class:`~tutorial_lib.hub.PinnedCheckpoint` names a Hub repository, a commit (never
a branch) and the SHA-256 of every file it needs; ``PRETRAINED_SEGFORMER`` holds the
pins the book was checked with (``"b0-ade"``:
``nvidia/segformer-b0-finetuned-ade-512-512``).
:func:`~tutorial_lib.hub.load_pretrained_segformer` downloads such a checkpoint once
with :func:`~tutorial_lib.hub.download_cached`, which refuses bytes that do not
match the pins, loads it without pickle and converts it with
:func:`~tutorial_lib.hub.segformer_from_hf_state_dict` (from
:mod:`tutorial_lib.hub_segformer`). Meant for Colab: the book never downloads while
it is built, and the tests use ``file://`` URLs. :mod:`tutorial_lib.hub` re-exports
every public name and is where they are documented.

``PRETRAINED_VIT`` pins a released ViT the same way, and
:func:`~tutorial_lib.hub.load_pretrained_vit_pos_embed` reads only its learned
position embeddings (chapter 06 draws their similarity, the ViT paper's Fig. 7).
"""

from __future__ import annotations

import json
import os
import re
import types
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Tuple, Union

import torch

from .hub_io import download_cached, load_state_dict, load_tensor
from .hub_segformer import segformer_from_hf_state_dict
from .models.segformer import SegFormer

__all__ = [
    "PinnedCheckpoint",
    "PRETRAINED_SEGFORMER",
    "load_pretrained_segformer",
    "PRETRAINED_VIT",
    "load_pretrained_vit_pos_embed",
]


_HEX40, _HEX64 = re.compile(r"[0-9a-f]{40}"), re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class PinnedCheckpoint:
    """A Hugging Face Hub checkpoint pinned to a commit and to the SHA-256 of each
    file.

    ``repo`` (``"owner/name"``), ``revision`` (the 40-hex commit, never a branch
    such as ``main``, whose content can change), ``variant`` (``"b0"``…``"b5"`` for
    :func:`~tutorial_lib.hub.segformer_from_hf_state_dict`) and ``files`` (file name
    -> 64-hex SHA-256, read-only).
    """

    repo: str
    revision: str
    variant: str
    files: Mapping[str, str]

    def __post_init__(self) -> None:
        if (
            not isinstance(self.repo, str)
            or self.repo.count("/") != 1
            or not all(self.repo.split("/"))
        ):
            raise ValueError(
                f"PinnedCheckpoint repo: expected 'owner/name', got {self.repo!r}"
            )
        if not isinstance(self.revision, str) or not _HEX40.fullmatch(
            self.revision
        ):
            raise ValueError(
                "PinnedCheckpoint revision: expected a commit as 40 lowercase hex "
                "digits, "
                f"got {self.revision!r}"
            )
        bad = {
            f: h
            for f, h in dict(self.files).items()
            if not (isinstance(h, str) and _HEX64.fullmatch(h))
            or not (
                isinstance(f, str)
                and f
                and "/" not in f
                and "\\" not in f
                and f not in {".", ".."}
            )
        }
        if not self.files or bad:
            raise ValueError(
                "PinnedCheckpoint files: expected plain file names -> sha256 as "
                "64 lowercase hex "
                f"digits, got {dict(bad) if bad else 'no files'}"
            )
        object.__setattr__(self, "files", types.MappingProxyType(dict(self.files)))

    @property
    def base_url(self) -> str:
        """``https://huggingface.co/<repo>/resolve/<revision>/``."""
        return f"https://huggingface.co/{self.repo}/resolve/{self.revision}/"

    def url(self, filename: str) -> str:
        """The pinned download URL of one of ``files``."""
        if filename not in self.files:
            raise ValueError(
                f"PinnedCheckpoint.url: expected one of {sorted(self.files)}, got "
                f"{filename!r}"
            )
        return self.base_url + filename

    def cache_name(self, filename: str) -> str:
        """``<owner>--<name>--<revision>--<file>``: two repos or revisions never
        share a cache file."""
        return f"{self.repo.replace('/', '--')}--{self.revision}--{filename}"


#: The checkpoints :func:`load_pretrained_segformer` knows: the bytes the book was
#: checked with.
PRETRAINED_SEGFORMER: Dict[str, PinnedCheckpoint] = {
    "b0-ade": PinnedCheckpoint(
        repo="nvidia/segformer-b0-finetuned-ade-512-512",
        revision="489d5cd81a0b59fab9b7ea758d3548ebe99677da",
        variant="b0",
        files={
            "model.safetensors": "6ae39addd01de6b1b8bde2cf677d43a5cd733424b8d186de3f95d1c51fee23f9",  # 15,036,944 B
            "config.json": "209caa9091e4632f7c8883c11170cd08ad29af68b23c09590aa4a5befb1a2a7f",  # 6,884 B
        },
    ),
}


def load_pretrained_segformer(
    name: str = "b0-ade",
    *,
    cache_dir: Optional[Union[str, os.PathLike]] = None,
    base_url: Optional[str] = None,
) -> Tuple[SegFormer, Dict[int, str]]:
    """The pretrained SegFormer ``name`` of ``PRETRAINED_SEGFORMER`` (eval mode) and
    its ``id2label``.

    ``"b0-ade"`` is ``nvidia/segformer-b0-finetuned-ade-512-512`` (150 ADE20K
    classes, 512×512 crops). Its ``model.safetensors`` and ``config.json`` are
    fetched with :func:`~tutorial_lib.hub.download_cached` from the pinned commit
    and checked against the pinned SHA-256 before they are cached (in ``cache_dir``,
    default :func:`~tutorial_lib.hub.default_cache_dir`, under names that include
    the revision): the revision and hashes pin exactly the bytes the book was
    checked with, so a changed or tampered file raises ``ValueError`` instead of
    loading. The weights are read with :func:`~tutorial_lib.hub.load_state_dict`
    (safetensors, no pickle) and converted by
    :func:`~tutorial_lib.hub.segformer_from_hf_state_dict`, so the model reproduces
    transformers' logits.

    ``base_url`` replaces ``https://huggingface.co/<repo>/resolve/<revision>/`` (an
    offline mirror, or a ``file://`` folder URL as in the tests); the SHA-256 pins
    still apply. Meant for Colab: the book never downloads while it is built.
    Returns ``(model, {class index: class name})``.
    """
    if name not in PRETRAINED_SEGFORMER:
        raise ValueError(
            "load_pretrained_segformer name: expected one of "
            f"{sorted(PRETRAINED_SEGFORMER)}, "
            f"got {name!r}"
        )
    pin = PRETRAINED_SEGFORMER[name]
    missing = {"model.safetensors", "config.json"} - set(pin.files)
    if missing:
        raise ValueError(
            f"load_pretrained_segformer: expected {name!r} to pin "
            "model.safetensors and config.json, "
            f"got files {sorted(pin.files)}"
        )
    if base_url is not None and not isinstance(base_url, str):
        raise ValueError(
            "load_pretrained_segformer base_url: expected a URL string, got "
            f"{type(base_url).__name__}"
        )
    root = pin.base_url if base_url is None else base_url.rstrip("/") + "/"
    paths = {
        f: download_cached(
            root + f,
            cache_dir=cache_dir,
            filename=pin.cache_name(f),
            sha256=pin.files[f],
        )
        for f in ("model.safetensors", "config.json")
    }
    model = segformer_from_hf_state_dict(
        load_state_dict(paths["model.safetensors"]), pin.variant
    )
    raw = json.loads(paths["config.json"].read_text(encoding="utf-8")).get(
        "id2label", {}
    )
    id2label = {int(k): str(v) for k, v in raw.items()}
    if sorted(id2label) != list(range(model.config.num_classes)):
        raise ValueError(
            "load_pretrained_segformer: expected config.json id2label to name "
            "classes "
            f"0…{model.config.num_classes - 1}, got {len(id2label)} entries"
        )
    return model, dict(sorted(id2label.items()))


#: Released ViTs whose position embeddings :func:`load_pretrained_vit_pos_embed`
#: reads: ``"b16-224"`` is ``google/vit-base-patch16-224`` (ImageNet-21k, fine-tuned
#: on ImageNet-1k at 224, a 14×14 grid), Hugging Face layout. ``variant`` names the
#: tensor that holds ``E_pos``.
PRETRAINED_VIT: Dict[str, PinnedCheckpoint] = {
    "b16-224": PinnedCheckpoint(
        repo="google/vit-base-patch16-224",
        revision="3f49326eb077187dfe1c2a2bb15fbd74e6ab91e3",
        variant="vit.embeddings.position_embeddings",
        files={
            "model.safetensors": "1cea07110a4a47edc51420b2dda6f3b8b58e7256e8f44b4ea6aa9696162ccb5d",  # 346,293,852 B
        },
    ),
}


def load_pretrained_vit_pos_embed(
    name: str = "b16-224",
    *,
    cache_dir: Optional[Union[str, os.PathLike]] = None,
    base_url: Optional[str] = None,
) -> torch.Tensor:
    """The learned position embeddings ``E_pos`` of the released ViT ``name`` of
    ``PRETRAINED_VIT``: ``(1, 1 + h·w, D)``, the class token's row first.

    The pinned ``model.safetensors`` is downloaded once with
    :func:`~tutorial_lib.hub.download_cached`, which checks its SHA-256 before it
    enters the cache (a changed or tampered file raises ``ValueError``), and only
    the ``E_pos`` tensor is read from it with :func:`~tutorial_lib.hub.load_tensor`
    (safetensors: no pickled code runs). ``base_url`` replaces the Hub URL (a
    ``file://`` folder in the tests); the pin still applies. Meant for Colab: the
    book never downloads while it is built.
    """
    if name not in PRETRAINED_VIT:
        raise ValueError(
            "load_pretrained_vit_pos_embed name: expected one of "
            f"{sorted(PRETRAINED_VIT)}, got {name!r}"
        )
    pin = PRETRAINED_VIT[name]
    if base_url is not None and not isinstance(base_url, str):
        raise ValueError(
            "load_pretrained_vit_pos_embed base_url: expected a URL string, got "
            f"{type(base_url).__name__}"
        )
    root = pin.base_url if base_url is None else base_url.rstrip("/") + "/"
    path = download_cached(
        root + "model.safetensors",
        cache_dir=cache_dir,
        filename=pin.cache_name("model.safetensors"),
        sha256=pin.files["model.safetensors"],
    )
    pos = load_tensor(path, pin.variant)
    if pos.ndim == 2:
        pos = pos[None]
    if pos.ndim != 3 or pos.shape[0] != 1:
        raise ValueError(
            "load_pretrained_vit_pos_embed: expected E_pos of shape (1, 1 + h*w, D), "
            f"got {tuple(pos.shape)}"
        )
    return pos.float()
