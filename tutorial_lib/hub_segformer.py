"""SegFormer checkpoints: the Hugging Face Hub and official NVlabs layouts, to and
from ours.

Import (this module): :func:`~tutorial_lib.hub.segformer_from_hf_state_dict` and
:func:`~tutorial_lib.hub.segformer_from_nvlabs_state_dict` build a
:class:`~tutorial_lib.models.segformer.SegFormer` from a released checkpoint.
Export (:mod:`tutorial_lib.hub_segformer_export`):
:func:`~tutorial_lib.hub.segformer_to_hf_state_dict`,
:func:`~tutorial_lib.hub.segformer_hf_config` and
:func:`~tutorial_lib.hub.save_hf_pretrained` write ours in the Hub layout that
``SegformerForSemanticSegmentation.from_pretrained`` loads; transformers is never
imported here. The pinned pretrained download built on these converters is
:mod:`tutorial_lib.hub_pretrained`. :mod:`tutorial_lib.hub` re-exports every public
name and is where they are documented.
"""

from __future__ import annotations

import re
from typing import (
    Callable,
    Dict,
    List,
    Match,
    Optional,
    Pattern,
    Tuple,
)

import torch

__all__ = [
    "convert_state_dict",
    "segformer_from_hf_state_dict",
    "segformer_from_nvlabs_state_dict",
    "HF_SEGFORMER_RULES",
    "NVLABS_SEGFORMER_RULES",
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
    :class:`~tutorial_lib.models.segformer_config.SegFormerConfig`; ``num_classes``
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


# The export half moved to hub_segformer_export; its names stay importable from here.
from .hub_segformer_export import (  # noqa: E402, F401
    HF_LAYER_NORM_EPS,
    save_hf_pretrained,
    segformer_hf_config,
    segformer_to_hf_state_dict,
)
