"""SegFormer checkpoints: the Hugging Face Hub and official NVlabs layouts, to and
from ours.

Import: :func:`~tutorial_lib.hub.segformer_from_hf_state_dict` and
:func:`~tutorial_lib.hub.segformer_from_nvlabs_state_dict` build a
:class:`~tutorial_lib.models.segformer.SegFormer` from a released checkpoint.
Export: :func:`~tutorial_lib.hub.segformer_to_hf_state_dict`,
:func:`~tutorial_lib.hub.segformer_hf_config` and
:func:`~tutorial_lib.hub.save_hf_pretrained` write ours in the Hub layout that
``SegformerForSemanticSegmentation.from_pretrained`` loads; transformers is never
imported here. The pinned pretrained download built on these converters is
:mod:`tutorial_lib.hub_pretrained`. :mod:`tutorial_lib.hub` re-exports every public
name and is where they are documented.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
from typing import (
    Callable,
    Dict,
    List,
    Mapping,
    Match,
    Optional,
    Pattern,
    Tuple,
    Union,
)

import torch
from torch import nn

__all__ = [
    "convert_state_dict",
    "segformer_from_hf_state_dict",
    "segformer_from_nvlabs_state_dict",
    "segformer_to_hf_state_dict",
    "segformer_hf_config",
    "save_hf_pretrained",
    "HF_SEGFORMER_RULES",
    "NVLABS_SEGFORMER_RULES",
    "HF_LAYER_NORM_EPS",
]


_Rule = Tuple[Pattern, Callable[[Match], Optional[str]]]


def _rules(table: List[Tuple[str, object]]) -> List[_Rule]:
    out = []
    for pattern, target in table:
        if isinstance(target, str) or target is None:
            out.append(
                (
                    re.compile(pattern),
                    (lambda t: lambda m: None if t is None else m.expand(t))(
                        target
                    ),
                )
            )
        else:
            out.append((re.compile(pattern), target))
    return out


def _minus1(template: str) -> Callable[[Match], str]:
    """Replacement for 1-based stage numbers (NVlabs ``block1``, ``norm1``,
    ``linear_c1``) -> 0-based."""
    return lambda m: template.format(int(m.group(1)) - 1, *m.groups()[1:])


_BLOCK_HF = r"^segformer\.encoder\.block\.(\d+)\.(\d+)\."
_BLOCK_HF5 = r"^segformer\.stages\.(\d+)\.blocks\.(\d+)\."
_OURS_BLOCK = r"encoder.stages.\1.blocks.\2."
# Hugging Face ``SegformerForSemanticSegmentation``: the Hub layout written by
# ``save_pretrained`` (and, second, the names transformers 5.x uses in memory).
# ``|k``/``|v`` mark the halves of ``kv``.
HF_SEGFORMER_RULES: List[_Rule] = _rules(
    [
        (
            r"^segformer\.encoder\.patch_embeddings\.(\d+)\.proj\.(weight|bias)$",
            r"encoder.stages.\1.patch_embed.proj.\2",
        ),
        (
            r"^segformer\.encoder\.patch_embeddings\.(\d+)\.layer_norm\.(weight|bias)$",
            r"encoder.stages.\1.patch_embed.norm.\2",
        ),
        (_BLOCK_HF + r"layer_norm_1\.(weight|bias)$", _OURS_BLOCK + r"norm1.\3"),
        (_BLOCK_HF + r"layer_norm_2\.(weight|bias)$", _OURS_BLOCK + r"norm2.\3"),
        (
            _BLOCK_HF + r"attention\.self\.query\.(weight|bias)$",
            _OURS_BLOCK + r"attn.q.\3",
        ),
        (
            _BLOCK_HF + r"attention\.self\.key\.(weight|bias)$",
            _OURS_BLOCK + r"attn.kv.\3|k",
        ),
        (
            _BLOCK_HF + r"attention\.self\.value\.(weight|bias)$",
            _OURS_BLOCK + r"attn.kv.\3|v",
        ),
        (
            _BLOCK_HF + r"attention\.self\.sr\.(weight|bias)$",
            _OURS_BLOCK + r"attn.sr.\3",
        ),
        (
            _BLOCK_HF + r"attention\.self\.layer_norm\.(weight|bias)$",
            _OURS_BLOCK + r"attn.norm.\3",
        ),
        (
            _BLOCK_HF + r"attention\.output\.dense\.(weight|bias)$",
            _OURS_BLOCK + r"attn.proj.\3",
        ),
        (_BLOCK_HF + r"mlp\.dense1\.(weight|bias)$", _OURS_BLOCK + r"mlp.fc1.\3"),
        (
            _BLOCK_HF + r"mlp\.dwconv\.dwconv\.(weight|bias)$",
            _OURS_BLOCK + r"mlp.dwconv.\3",
        ),
        (_BLOCK_HF + r"mlp\.dense2\.(weight|bias)$", _OURS_BLOCK + r"mlp.fc2.\3"),
        (
            r"^segformer\.encoder\.layer_norm\.(\d+)\.(weight|bias)$",
            r"encoder.stages.\1.norm.\2",
        ),
        (
            r"^decode_head\.linear_c\.(\d+)\.proj\.(weight|bias)$",
            r"decode_head.linear_c.\1.\2",
        ),
        (r"^decode_head\.linear_fuse\.weight$", "decode_head.linear_fuse.weight"),
        (
            r"^decode_head\.batch_norm\.(weight|bias|running_mean|running_var|num_batches_tracked)$",
            r"decode_head.norm.\1",
        ),
        (
            r"^decode_head\.classifier\.(weight|bias)$",
            r"decode_head.linear_pred.\1",
        ),
        # transformers 5.x in-memory names (model.state_dict() of a 5.x model)
        (
            r"^segformer\.stages\.(\d+)\.patch_embeddings\.proj\.(weight|bias)$",
            r"encoder.stages.\1.patch_embed.proj.\2",
        ),
        (
            r"^segformer\.stages\.(\d+)\.patch_embeddings\.layer_norm\.(weight|bias)$",
            r"encoder.stages.\1.patch_embed.norm.\2",
        ),
        (
            _BLOCK_HF5 + r"layernorm_before\.(weight|bias)$",
            _OURS_BLOCK + r"norm1.\3",
        ),
        (
            _BLOCK_HF5 + r"layernorm_after\.(weight|bias)$",
            _OURS_BLOCK + r"norm2.\3",
        ),
        (
            _BLOCK_HF5 + r"attention\.q_proj\.(weight|bias)$",
            _OURS_BLOCK + r"attn.q.\3",
        ),
        (
            _BLOCK_HF5 + r"attention\.k_proj\.(weight|bias)$",
            _OURS_BLOCK + r"attn.kv.\3|k",
        ),
        (
            _BLOCK_HF5 + r"attention\.v_proj\.(weight|bias)$",
            _OURS_BLOCK + r"attn.kv.\3|v",
        ),
        (
            _BLOCK_HF5
            + r"attention\.sequence_reduction\.sequence_reduction\.(weight|bias)$",
            _OURS_BLOCK + r"attn.sr.\3",
        ),
        (
            _BLOCK_HF5
            + r"attention\.sequence_reduction\.layer_norm\.(weight|bias)$",
            _OURS_BLOCK + r"attn.norm.\3",
        ),
        (
            _BLOCK_HF5 + r"attention\.o_proj\.(weight|bias)$",
            _OURS_BLOCK + r"attn.proj.\3",
        ),
        (_BLOCK_HF5 + r"mlp\.fc1\.(weight|bias)$", _OURS_BLOCK + r"mlp.fc1.\3"),
        (
            _BLOCK_HF5 + r"mlp\.dwconv\.dwconv\.(weight|bias)$",
            _OURS_BLOCK + r"mlp.dwconv.\3",
        ),
        (_BLOCK_HF5 + r"mlp\.fc2\.(weight|bias)$", _OURS_BLOCK + r"mlp.fc2.\3"),
        (
            r"^segformer\.stages\.(\d+)\.layer_norm\.(weight|bias)$",
            r"encoder.stages.\1.norm.\2",
        ),
        (
            r"^decode_head\.linear_projections\.(\d+)\.proj\.(weight|bias)$",
            r"decode_head.linear_c.\1.\2",
        ),
    ]
)

_BLOCK_NV = r"^backbone\.block(\d)\.(\d+)\."
# The official NVlabs/SegFormer (mmseg 0.x) layout; the unused
# ``decode_head.conv_seg`` is dropped.
NVLABS_SEGFORMER_RULES: List[_Rule] = _rules(
    [
        (
            r"^backbone\.patch_embed(\d)\.(proj|norm)\.(weight|bias)$",
            _minus1("encoder.stages.{}.patch_embed.{}.{}"),
        ),
        (
            _BLOCK_NV + r"(norm1|norm2)\.(weight|bias)$",
            _minus1("encoder.stages.{}.blocks.{}.{}.{}"),
        ),
        (
            _BLOCK_NV + r"attn\.(q|kv|proj|sr|norm)\.(weight|bias)$",
            _minus1("encoder.stages.{}.blocks.{}.attn.{}.{}"),
        ),
        (
            _BLOCK_NV + r"mlp\.(fc1|fc2)\.(weight|bias)$",
            _minus1("encoder.stages.{}.blocks.{}.mlp.{}.{}"),
        ),
        (
            _BLOCK_NV + r"mlp\.dwconv\.dwconv\.(weight|bias)$",
            _minus1("encoder.stages.{}.blocks.{}.mlp.dwconv.{}"),
        ),
        (
            r"^backbone\.norm(\d)\.(weight|bias)$",
            _minus1("encoder.stages.{}.norm.{}"),
        ),
        (
            r"^decode_head\.linear_c(\d)\.proj\.(weight|bias)$",
            _minus1("decode_head.linear_c.{}.{}"),
        ),
        (
            r"^decode_head\.linear_fuse\.conv\.weight$",
            "decode_head.linear_fuse.weight",
        ),
        (
            r"^decode_head\.linear_fuse\.bn\.(weight|bias|running_mean|running_var|num_batches_tracked)$",
            r"decode_head.norm.\1",
        ),
        (
            r"^decode_head\.linear_pred\.(weight|bias)$",
            r"decode_head.linear_pred.\1",
        ),
        # built by mmseg's BaseDecodeHead, never used
        (
            r"^decode_head\.conv_seg\.(weight|bias)$",
            None,
        ),
    ]
)


def convert_state_dict(
    state_dict: Dict[str, torch.Tensor], rules: List[_Rule]
) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """Rename ``state_dict`` with ``rules`` (first match wins); return
    ``(converted, unmatched keys)``.

    Keys mapped to ``None`` are dropped; targets ending in ``|k``/``|v`` are the key
    and value halves of a fused ``kv`` Linear and are concatenated ``[k; v]`` along
    the output dimension.
    """
    out: Dict[str, torch.Tensor] = {}
    halves: Dict[str, Dict[str, torch.Tensor]] = {}
    unmatched: List[str] = []
    for key, value in state_dict.items():
        for pattern, target in rules:
            match = pattern.match(key)
            if match:
                name = target(match)
                if name is not None and "|" in name:
                    base, part = name.split("|")
                    halves.setdefault(base, {})[part] = value
                elif name is not None:
                    out[name] = value
                break
        else:
            unmatched.append(key)
    for base, parts in halves.items():
        if set(parts) != {"k", "v"}:
            unmatched.append(
                f"{base} (only the {'key' if 'k' in parts else 'value'} half is "
                "present)"
            )
            continue
        out[base] = torch.cat([parts["k"], parts["v"]], dim=0)
    return out, unmatched


def _segformer_from(
    state_dict: Dict[str, torch.Tensor],
    variant: object,
    rules: List[_Rule],
    source: str,
    classifier_key: str,
    **config_fields,
):
    from .models.segformer import SegFormer, SegFormerConfig, segformer_config

    if not isinstance(state_dict, dict) or not all(
        isinstance(v, torch.Tensor) for v in state_dict.values()
    ):
        raise ValueError(
            f"{source}: expected a dict of tensors (e.g. from "
            "tutorial_lib.hub.load_state_dict), "
            f"got {type(state_dict).__name__}"
        )
    if config_fields.get("num_classes") is None:
        config_fields.pop("num_classes", None)
        if classifier_key in state_dict:
            config_fields["num_classes"] = int(state_dict[classifier_key].shape[0])
    if isinstance(variant, SegFormerConfig):
        from dataclasses import replace

        config = replace(variant, **config_fields)
    elif isinstance(variant, str):
        config = segformer_config(variant, **config_fields)
    else:
        raise ValueError(
            f"{source}: expected variant 'b0'…'b5' or a SegFormerConfig, got "
            f"{variant!r}"
        )
    model = SegFormer(config)
    converted, unmatched = convert_state_dict(state_dict, rules)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(converted))
    extra = sorted(unmatched + [k for k in converted if k not in expected])
    if missing or extra:
        raise ValueError(
            f"{source}: the checkpoint does not fit "
            f"SegFormer-{variant if isinstance(variant, str) else 'config'}"
            f": {len(missing)} missing key(s) {missing}; {len(extra)} unexpected "
            f"key(s) {extra}"
        )
    wrong = [
        f"{k}: expected {tuple(expected[k].shape)}, got {tuple(v.shape)}"
        for k, v in converted.items()
        if v.shape != expected[k].shape
    ]
    if wrong:
        raise ValueError(
            f"{source}: {len(wrong)} tensor(s) with the wrong shape: {wrong}"
        )
    model.load_state_dict(converted, strict=True)
    return model.eval()


def segformer_from_hf_state_dict(
    state_dict: Dict[str, torch.Tensor],
    variant: object = "b0",
    num_classes: Optional[int] = None,
    layer_norm_eps: float = 1e-5,
):
    """A :class:`~tutorial_lib.models.segformer.SegFormer` (eval mode) from a
    Hugging Face checkpoint.

    ``state_dict`` is a ``SegformerForSemanticSegmentation`` state dict in the Hub
    layout (the ``model.safetensors`` that ``save_pretrained`` writes and
    ``nvidia/segformer-*`` ship:
    ``segformer.encoder.block.N.N.attention.self.query`` …,
    ``decode_head.linear_c.N.proj`` …) or with transformers 5.x in-memory names.
    ``variant`` is ``"b0"``…``"b5"`` or a
    :class:`~tutorial_lib.models.segformer.SegFormerConfig`; ``num_classes``
    defaults to the classifier's size. HF's separate ``key``/``value`` Linears
    become our fused ``kv``.

    ``layer_norm_eps`` defaults to 1e-5 because Hugging Face builds every LayerNorm
    with PyTorch's default eps, so the converted model reproduces its logits; the
    official code (and training of the released weights) used 1e-6 for the block and
    stage-end norms — pass 1e-6 to compute as it. Missing, unexpected or wrongly
    shaped tensors raise ``ValueError`` listing them.
    """
    return _segformer_from(
        state_dict,
        variant,
        HF_SEGFORMER_RULES,
        "segformer_from_hf_state_dict",
        "decode_head.classifier.weight",
        num_classes=num_classes,
        layer_norm_eps=layer_norm_eps,
    )


def segformer_from_nvlabs_state_dict(
    state_dict: Dict[str, torch.Tensor],
    variant: object = "b0",
    num_classes: Optional[int] = None,
    layer_norm_eps: float = 1e-6,
):
    """A SegFormer (eval mode) from an official NVlabs/SegFormer checkpoint's
    ``state_dict``.

    Keys ``backbone.patch_embed1.proj`` …, ``backbone.block1.0.attn.q`` …,
    ``backbone.norm1`` …, ``decode_head.linear_c4.proj``,
    ``decode_head.linear_fuse.conv``/``.bn``, ``decode_head.linear_pred``; the
    unused ``decode_head.conv_seg`` that mmseg's ``BaseDecodeHead`` builds is
    dropped. LayerNorm eps 1e-6 as the official code. Missing, unexpected or wrongly
    shaped tensors raise ``ValueError`` listing them.
    """
    return _segformer_from(
        state_dict,
        variant,
        NVLABS_SEGFORMER_RULES,
        "segformer_from_nvlabs_state_dict",
        "decode_head.linear_pred.weight",
        num_classes=num_classes,
        layer_norm_eps=layer_norm_eps,
    )


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
