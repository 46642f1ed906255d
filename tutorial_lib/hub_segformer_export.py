"""SegFormer checkpoints, export: ours in the Hugging Face Hub layout.

:func:`~tutorial_lib.hub.segformer_to_hf_state_dict`,
:func:`~tutorial_lib.hub.segformer_hf_config` and
:func:`~tutorial_lib.hub.save_hf_pretrained` write ours in the Hub layout that
``SegformerForSemanticSegmentation.from_pretrained`` loads; transformers is never
imported here. The import half (released checkpoints into ours) is
:mod:`tutorial_lib.hub_segformer`; :mod:`tutorial_lib.hub` re-exports every public
name and is where they are documented.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
from typing import Dict, List, Mapping, Optional, Pattern, Tuple, Union

import torch
from torch import nn

__all__ = [
    "segformer_to_hf_state_dict",
    "segformer_hf_config",
    "save_hf_pretrained",
    "HF_LAYER_NORM_EPS",
]


#: transformers builds every SegFormer norm with PyTorch's default eps and never
#: reads ``config.layer_norm_eps``.
HF_LAYER_NORM_EPS = 1e-5
# Ours -> the Hugging Face Hub layout: the inverse of the first block of
# HF_SEGFORMER_RULES.
_BLOCK_TO_HF = {
    "norm1": "layer_norm_1",
    "norm2": "layer_norm_2",
    "attn.q": "attention.self.query",
    "attn.kv": "attention.self.{}",
    "attn.sr": "attention.self.sr",  # {}: kv -> key and value
    "attn.norm": "attention.self.layer_norm",
    "attn.proj": "attention.output.dense",
    "mlp.fc1": "mlp.dense1",
    "mlp.dwconv": "mlp.dwconv.dwconv",
    "mlp.fc2": "mlp.dense2",
}
_TO_HF: List[Tuple[Pattern, str]] = [
    (re.compile(p), t)
    for p, t in [
        (
            r"^encoder\.stages\.(\d+)\.patch_embed\.proj\.(weight|bias)$",
            r"segformer.encoder.patch_embeddings.\1.proj.\2",
        ),
        (
            r"^encoder\.stages\.(\d+)\.patch_embed\.norm\.(weight|bias)$",
            r"segformer.encoder.patch_embeddings.\1.layer_norm.\2",
        ),
        *[
            (
                r"^encoder\.stages\.(\d+)\.blocks\.(\d+)\."
                + re.escape(ours)
                + r"\.(weight|bias)$",
                r"segformer.encoder.block.\1.\2." + hf + r".\3",
            )
            for ours, hf in _BLOCK_TO_HF.items()
        ],
        (
            r"^encoder\.stages\.(\d+)\.norm\.(weight|bias)$",
            r"segformer.encoder.layer_norm.\1.\2",
        ),
        (
            r"^decode_head\.linear_c\.(\d+)\.(weight|bias)$",
            r"decode_head.linear_c.\1.proj.\2",
        ),
        (r"^decode_head\.linear_fuse\.weight$", "decode_head.linear_fuse.weight"),
        (
            r"^decode_head\.norm\.(weight|bias|running_mean|running_var|num_batches_tracked)$",
            r"decode_head.batch_norm.\1",
        ),
        (
            r"^decode_head\.linear_pred\.(weight|bias)$",
            r"decode_head.classifier.\1",
        ),
    ]
]


def _check_exportable(
    model: nn.Module, source: str, allow_eps_change: bool
) -> None:
    """Refuse what ``SegformerForSemanticSegmentation`` cannot express."""
    from .layers.all_mlp_decoder import AllMLPDecoder
    from .models.segformer import SegFormer

    if not isinstance(model, SegFormer):
        raise ValueError(
            f"{source}: expected a tutorial_lib SegFormer "
            "(tutorial_lib.models.segformer.SegFormer), "
            f"got {type(model).__name__}"
        )
    if not isinstance(model.decode_head, AllMLPDecoder):
        raise ValueError(
            f"{source}: expected the unfolded AllMLPDecoder head (Hugging Face "
            "keeps linear_c, "
            "linear_fuse and batch_norm apart), got "
            f"{type(model.decode_head).__name__}; export the "
            f"model you called fold_decoder() on instead"
        )
    other = [
        f"{n} (eps {m.eps:g})"
        for n, m in model.named_modules()
        if isinstance(m, (nn.LayerNorm, nn.BatchNorm2d))
        and m.eps != HF_LAYER_NORM_EPS
    ]
    if other and not allow_eps_change:
        raise ValueError(
            f"{source}: expected every norm with eps {HF_LAYER_NORM_EPS:g} "
            "(transformers' SegFormer uses "
            "PyTorch's default and ignores config.layer_norm_eps), got "
            f"{len(other)} other(s), e.g. "
            f"{other[:2]}; build the model with layer_norm_eps=1e-5 and load these "
            "weights into it, or "
            "pass allow_eps_change=True to export weights that will compute "
            "slightly differently"
        )


def segformer_to_hf_state_dict(
    model: nn.Module, *, allow_eps_change: bool = False
) -> Dict[str, torch.Tensor]:
    """The state dict of a :class:`~tutorial_lib.models.segformer.SegFormer` in the
    Hugging Face Hub layout.

    The inverse of :func:`segformer_from_hf_state_dict`: the names
    ``nvidia/segformer-*`` ship and ``save_pretrained`` writes
    (``segformer.encoder.block.0.0.attention.self.query`` …,
    ``decode_head.linear_c.3.proj``, ``decode_head.batch_norm`` with its running
    statistics); our fused ``kv`` becomes HF's ``key`` (first half) and ``value``.
    Detached CPU copies. ``ValueError`` for what HF cannot express: not a SegFormer,
    a folded decoder, a norm eps other than 1e-5 (HF always computes with 1e-5;
    ``allow_eps_change=True`` exports anyway, outputs then differ slightly).
    """
    _check_exportable(model, "segformer_to_hf_state_dict", allow_eps_change)
    out: Dict[str, torch.Tensor] = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu()
        for pattern, template in _TO_HF:
            match = pattern.match(key)
            if match:
                name = match.expand(template)
                if "{}" in name:  # kv -> key, value
                    for part, half in zip(("key", "value"), value.chunk(2, dim=0)):
                        out[name.format(part)] = half.clone()
                else:
                    out[name] = value.clone()
                break
        else:
            raise ValueError(
                "segformer_to_hf_state_dict: expected only SegFormer parameters, "
                f"got {key!r}, "
                f"which has no Hugging Face name"
            )
    return out


def segformer_hf_config(
    model: nn.Module, *, allow_eps_change: bool = False
) -> Dict[str, object]:
    """Keyword arguments of ``transformers.SegformerConfig`` describing ``model``
    (plain JSON types).

    ``SegformerConfig(**segformer_hf_config(model))`` builds the matching Hugging
    Face model. ``layer_norm_eps`` records the model's own eps; HF stores it but
    never reads it. Dropout, drop-path and the loss's ignore index (255, as
    :func:`tutorial_lib.train.segmentation_loss`) matter only for training. Same
    refusals as :func:`segformer_to_hf_state_dict`.
    """
    _check_exportable(model, "segformer_hf_config", allow_eps_change)
    c = model.config
    return dict(
        num_channels=c.in_chans,
        num_encoder_blocks=len(c.embed_dims),
        depths=list(c.depths),
        sr_ratios=list(c.sr_ratios),
        hidden_sizes=list(c.embed_dims),
        patch_sizes=list(c.patch_sizes),
        strides=list(c.strides),
        num_attention_heads=list(c.num_heads),
        mlp_ratios=list(c.mlp_ratios),
        hidden_act="gelu",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        classifier_dropout_prob=float(c.decoder_dropout),
        initializer_range=0.02,
        drop_path_rate=float(c.drop_path_rate),
        layer_norm_eps=float(c.layer_norm_eps),
        decoder_hidden_size=c.decoder_dim,
        semantic_loss_ignore_index=255,
        reshape_last_stage=True,
        num_labels=c.num_classes,
    )


def save_hf_pretrained(
    model: nn.Module,
    folder: Union[str, os.PathLike],
    id2label: Optional[Mapping[int, str]] = None,
    *,
    allow_eps_change: bool = False,
) -> pathlib.Path:
    """Write ``config.json`` and ``model.safetensors`` that
    ``from_pretrained(folder)`` loads; return the folder.

    ``config.json`` holds :func:`segformer_hf_config` with
    ``"model_type": "segformer"``,
    ``"architectures": ["SegformerForSemanticSegmentation"]`` and
    ``id2label``/``label2id`` (``LABEL_i`` unless ``id2label`` names the
    ``num_classes`` classes); ``model.safetensors`` holds
    :func:`segformer_to_hf_state_dict`. Existing files of those names are
    overwritten.
    """
    from safetensors.torch import save_file

    config = segformer_hf_config(model, allow_eps_change=allow_eps_change)
    state = segformer_to_hf_state_dict(model, allow_eps_change=allow_eps_change)
    num_labels = int(config.pop("num_labels"))
    # int keys, or the strings config.json holds
    labels = (
        {str(i): f"LABEL_{i}" for i in range(num_labels)}
        if id2label is None
        else {str(k): str(v) for k, v in id2label.items()}
    )
    if sorted(labels) != sorted(map(str, range(num_labels))):
        raise ValueError(
            "save_hf_pretrained id2label: expected names for classes "
            f"0…{num_labels - 1}, "
            f"got keys {sorted(labels, key=lambda k: (len(k), k))[:8]}"
        )
    config.update(
        model_type="segformer",
        architectures=["SegformerForSemanticSegmentation"],
        id2label={str(i): labels[str(i)] for i in range(num_labels)},
        label2id={labels[str(i)]: i for i in range(num_labels)},
    )
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in state.items()},
        str(folder / "model.safetensors"),
        metadata={"format": "pt"},
    )
    (folder / "config.json").write_text(
        json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return folder
