"""Checks for chapters 06–07 (ViT patching and SETR).

* ``check_patch_embed``: a student's ``patch_embed(x, weight, bias, patch_size)`` (patches by
  reshaping, then one matrix product) against :class:`tutorial_lib.layers.patch_embed.PatchEmbed`.
* ``check_multi_head_self_attention``: ``multi_head_self_attention(x, qkv_weight, qkv_bias,
  proj_weight, proj_bias, num_heads)`` against :class:`tutorial_lib.layers.attention.Attention`.
* ``check_pup_head`` and ``check_mla_head``: the student's ``PUPHead`` / ``MLAHead`` classes get
  ``tutorial_lib``'s seeded weights (so submodule names must be the ones the exercise gives) and
  must produce the same eval-mode logits.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.attention import Attention
from ..layers.patch_embed import PatchEmbed
from ..models.setr import MLAHead as _MLAHead
from ..models.setr import PUPHead as _PUPHead
from ..models.setr import SETRConfig
from . import _core
from ._core import Checker, register

__all__ = ["check_patch_embed", "check_multi_head_self_attention", "check_pup_head", "check_mla_head"]


@register("patch_embed", forbid=["tutorial_lib.layers.patch_embed.PatchEmbed", "tutorial_lib.layers.patch_embed.patchify"],
          names=["patch_embed"],
          description="patch_embed(x, weight, bias, patch_size): (B, C, H, W) -> (B, N, D)")
def check_patch_embed(func: Any) -> None:
    """Compare ``func(x, weight, bias, patch_size)`` with ``PatchEmbed`` (its conv weights)."""
    with Checker("patch embedding") as c:
        gen = _core.generator(3)
        for (h, w), p, cin, d in (((32, 32), 16, 3, 8), ((24, 40), 8, 3, 12), ((12, 8), 4, 2, 5)):
            _core.manual_seed(0)
            ref = PatchEmbed((h, w), p, cin, d)
            x = torch.randn(2, cin, h, w, generator=gen)
            with torch.no_grad():
                want = ref(x)
                got = func(x, ref.proj.weight.clone(), ref.proj.bias.clone(), p)
            hint = ("flatten each patch in (C, P, P) order, the layout of weight.reshape(D, -1), "
                    "and list patches row by row: N = (H/P)·(W/P)")
            if isinstance(got, torch.Tensor) and got.shape == want.shape and not torch.allclose(got, want, atol=1e-4):
                flat = x.reshape(2, cin, h // p, p, w // p, p).permute(0, 4, 2, 1, 3, 5).reshape(2, -1, cin * p * p)
                if torch.allclose(got, flat @ ref.proj.weight.detach().reshape(d, -1).T + ref.proj.bias.detach(),
                                  atol=1e-4):
                    hint = "the patches come out column by column: put the patch-row axis before the patch-column axis"
            c.close(got, want, f"{h}x{w} image, P={p}, D={d}", hint=hint)


@register("multi_head_self_attention", forbid=["tutorial_lib.layers.attention.Attention", "tutorial_lib.layers.attention.attention_explicit"],
          names=["multi_head_self_attention"],
          description="multi_head_self_attention(x, qkv_weight, qkv_bias, proj_weight, proj_bias, num_heads)")
def check_multi_head_self_attention(func: Any) -> None:
    """Compare the student's explicit multi-head self-attention with ``Attention``."""
    with Checker("multi-head self-attention") as c:
        gen = _core.generator(5)
        for b, n, d, heads in ((2, 10, 16, 4), (1, 17, 24, 3), (3, 5, 8, 1)):
            _core.manual_seed(1)
            ref = Attention(d, heads).eval()
            x = torch.randn(b, n, d, generator=gen)
            args = (x, ref.qkv.weight.detach().clone(), ref.qkv.bias.detach().clone(),
                    ref.proj.weight.detach().clone(), ref.proj.bias.detach().clone(), heads)
            with torch.no_grad():
                want = ref(x)
                got = func(*args)
                # the classic mistake: scaling by sqrt(D) instead of sqrt(d = D / heads)
                q, k, v = (x @ args[1].T + args[2]).reshape(b, n, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
                wrong = ((q @ k.transpose(-2, -1) / math.sqrt(d)).softmax(-1) @ v).transpose(1, 2).reshape(b, n, d)
                wrong = wrong @ args[3].T + args[4]
            hint = "split qkv into (B, N, 3, heads, d) and move heads before N; concatenate heads before proj"
            if isinstance(got, torch.Tensor) and got.shape == want.shape and heads > 1 \
                    and torch.allclose(got, wrong, atol=1e-5):
                hint = "scale the scores by 1/sqrt(d) with d = D / num_heads (the per-head width), not 1/sqrt(D)"
            c.close(got, want, f"B={b}, N={n}, D={d}, {heads} head(s)", hint=hint)


def _load(c: Checker, student: nn.Module, ref: nn.Module, what: str) -> bool:
    own, theirs = ref.state_dict(), student.state_dict()
    missing = sorted(set(own) - set(theirs))
    extra = sorted(set(theirs) - set(own))
    if missing or extra:
        c.true(False, f"{what}: state dict keys differ from the official names "
                      f"(missing {missing[:4]}{'...' if len(missing) > 4 else ''}, unexpected {extra[:4]})")
        return False
    bad = [k for k in own if own[k].shape != theirs[k].shape]
    if bad:
        c.true(False, f"{what}: parameter shapes differ for {bad[:3]}: expected "
                      f"{[tuple(own[k].shape) for k in bad[:3]]}, got {[tuple(theirs[k].shape) for k in bad[:3]]}")
        return False
    student.load_state_dict(own)
    return c.true(True, "")


def _randomise_bn(module: nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(generator=gen)
                m.running_var.uniform_(0.5, 2.0, generator=gen)


@register("pup_head", forbid=["tutorial_lib.models.setr.PUPHead"],
          names=["PUPHead"],
          description="PUPHead(embed_dim, channels, num_classes): (B, N, D), grid -> (B, K, 16h, 16w)")
def check_pup_head(cls: Any) -> None:
    """Load the library's SETR-PUP head weights (P = 16) into the student's class and compare."""
    with Checker("SETR PUP head") as c:
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            c.true(False, f"expected an nn.Module subclass named PUPHead, got {type(cls).__name__}")
            return
        gen = _core.generator(7)
        for d, ch, k, grid in ((32, 8, 3, (2, 2)), (24, 16, 5, (3, 2))):
            _core.manual_seed(0)
            ref = _PUPHead(SETRConfig(embed_dim=d, head_channels=ch, num_classes=k, patch_size=16,
                                      conv_seg=False)).eval()
            _randomise_bn(ref, gen)
            student = cls(d, ch, k).eval()
            if not _load(c, student, ref, f"PUPHead({d}, {ch}, {k})"):
                return
            x = torch.randn(2, grid[0] * grid[1], d, generator=gen)
            with torch.no_grad():
                want, got = ref(x, grid), student(x, grid)
            c.close(got, want, f"grid {grid}", hint="conv–BN–ReLU four times with a 2× bilinear upsampling "
                    "(align_corners=False) after the first three, then conv_4 and a last 2×")


@register("mla_head", forbid=["tutorial_lib.models.setr.MLAHead"],
          names=["MLAHead"],
          description="MLAHead(mla_channels, head_channels, num_classes): 4 maps -> (B, K, 4h, 4w)")
def check_mla_head(cls: Any) -> None:
    """Load the library's SETR-MLA head weights into the student's class and compare."""
    with Checker("SETR MLA head") as c:
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            c.true(False, f"expected an nn.Module subclass named MLAHead, got {type(cls).__name__}")
            return
        gen = _core.generator(9)
        for mla, ch, k, (h, w) in ((16, 8, 3, (3, 3)), (8, 4, 5, (2, 5))):
            _core.manual_seed(0)
            ref = _MLAHead(SETRConfig(mla_channels=mla, mlahead_channels=ch, num_classes=k, conv_seg=False)).eval()
            _randomise_bn(ref, gen)
            student = cls(mla, ch, k).eval()
            if not _load(c, student, ref, f"MLAHead({mla}, {ch}, {k})"):
                return
            feats = [torch.randn(2, mla, h, w, generator=gen) for _ in range(4)]
            with torch.no_grad():
                want, got = ref(feats), student(feats)
                streams = [F.interpolate(getattr(ref, f"head{i + 2}")(f), scale_factor=4, mode="bilinear",
                                         align_corners=False) for i, f in enumerate(feats)]
                wrong = ref.cls(torch.cat(streams, dim=1))
            hint = "per stream two conv–BN–ReLU, ↑4 bilinear, concatenate the four streams, then the 3×3 cls"
            if isinstance(got, torch.Tensor) and got.shape == want.shape and torch.allclose(got, wrong, atol=1e-5):
                hint = "the official MLA head upsamples each stream with align_corners=True"
            c.close(got, want, f"{h}x{w} maps with {mla} channels", hint=hint)
