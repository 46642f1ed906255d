"""Checks for the SegFormer layer chapters (08-10): patch embedding, efficient attention, Mix-FFN.

Each check builds the student's class and ``tutorial_lib``'s with the same arguments, copies the
reference weights into the student's module (so the parameter names must be the standard ones:
``proj``/``norm``; ``q``/``kv``/``proj``/``sr``/``norm``; ``fc1``/``dwconv``/``fc2``) and compares
outputs on seeded inputs, including sizes that are not multiples of the stride.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Tuple

import torch
from torch import nn

from ..layers.efficient_attention import EfficientSelfAttention
from ..layers.mix_ffn import MixFFN
from ..layers.overlap_patch_embed import OverlapPatchEmbed
from . import _core
from ._core import Checker, register

__all__ = ["check_overlap_patch_embed", "check_efficient_self_attention", "check_mix_ffn"]


def _build(c: Checker, cls: Any, kwargs: Dict[str, Any], ref: nn.Module) -> Any:
    """Instantiate the student's class and load the reference weights; ``None`` on failure."""
    try:
        student = cls(**kwargs)
    except NotImplementedError:
        c.true(False, f"{getattr(cls, '__name__', cls)} is not implemented yet (it raised NotImplementedError)")
        return None
    except Exception as err:  # report the student's crash and go on
        c.true(False, f"{cls.__name__}({kwargs}) raised {type(err).__name__}: {err}")
        return None
    if not isinstance(student, nn.Module):
        c.true(False, f"expected an nn.Module subclass, got {type(student).__name__}")
        return None
    want = sorted(ref.state_dict())
    got = sorted(student.state_dict())
    if not c.equal(got, want, f"parameter names of {cls.__name__}({kwargs})",
                   "use the standard submodule names of the chapter so that released weights load"):
        return None
    student.load_state_dict(ref.state_dict())
    return student.eval()


def _run(c: Checker, what: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except NotImplementedError:
        c.true(False, f"{what}: not implemented yet (NotImplementedError)")
    except Exception as err:
        c.true(False, f"{what}: {_core.student_raised(err)}")
    return None


@register("overlap_patch_embed", forbid=["tutorial_lib.layers.overlap_patch_embed.OverlapPatchEmbed"],
          names=["OverlapPatchEmbed"],
          description="OverlapPatchEmbed(in_chans, embed_dim, patch_size, stride): x -> (tokens, H_out, W_out)")
def check_overlap_patch_embed(cls: Any) -> None:
    """Check a student's ``OverlapPatchEmbed(in_chans, embed_dim, patch_size, stride)`` class.

    ``forward(x (B, C, H, W))`` must return ``(tokens (B, N, C), H_out, W_out)`` equal to
    :class:`tutorial_lib.layers.overlap_patch_embed.OverlapPatchEmbed` (padding ``K // 2``, LayerNorm on
    tokens) for SegFormer's stage-1 and later-stage settings on even and odd input sizes.
    """
    cases: List[Tuple[Dict[str, int], Tuple[int, int, int, int]]] = [
        (dict(in_chans=3, embed_dim=8, patch_size=7, stride=4), (2, 3, 32, 32)),
        (dict(in_chans=3, embed_dim=8, patch_size=7, stride=4), (1, 3, 37, 50)),
        (dict(in_chans=8, embed_dim=16, patch_size=3, stride=2), (1, 8, 15, 9)),
        (dict(in_chans=4, embed_dim=6, patch_size=5, stride=3), (1, 4, 11, 13)),
    ]
    with Checker("overlapping patch embedding") as c:
        gen = _core.generator(8)
        for kwargs, shape in cases:
            _core.manual_seed(len(shape) + kwargs["embed_dim"])
            ref = OverlapPatchEmbed(**kwargs).eval()
            with torch.no_grad():  # a non-trivial LayerNorm, so that a missing norm is caught
                ref.norm.weight.uniform_(0.5, 1.5)
                ref.norm.bias.uniform_(-0.5, 0.5)
            student = _build(c, cls, kwargs, ref)
            if student is None:
                break
            x = torch.randn(*shape, generator=gen)
            what = f"{kwargs} on input {shape}"
            out = _run(c, what, lambda: student(x))
            if out is None:
                continue
            if not (isinstance(out, tuple) and len(out) == 3):
                c.true(False, f"{what}: expected a tuple (tokens, H_out, W_out), got {type(out).__name__}")
                continue
            want, h, w = ref(x)
            c.equal((int(out[1]), int(out[2])), (h, w), f"{what}: (H_out, W_out)",
                    "padding is patch_size // 2; the output size is floor((H + 2P - K) / S) + 1")
            c.close(out[0], want, f"{what}: tokens",
                    "flatten the conv output to (B, N, C) and apply the LayerNorm over C")


@register("efficient_self_attention", forbid=["tutorial_lib.layers.efficient_attention.EfficientSelfAttention", "tutorial_lib.layers.efficient_attention.SequenceReductionLiteral"],
          names=["EfficientSelfAttention"],
          description="EfficientSelfAttention(dim, num_heads=1, sr_ratio=1): (x, H, W) -> (B, N, C)")
def check_efficient_self_attention(cls: Any) -> None:
    """Check a student's ``EfficientSelfAttention(dim, num_heads=1, sr_ratio=1)`` class.

    Submodules ``q``, ``kv``, ``proj`` and, when ``sr_ratio > 1``, ``sr`` (strided conv) and ``norm``
    (LayerNorm); ``forward(x (B, N, C), H, W)`` must equal
    :class:`tutorial_lib.layers.efficient_attention.EfficientSelfAttention` for one and several heads,
    reduction ratios 1, 2, 4 and a grid that is not a multiple of ``sr_ratio``.
    """
    cases = [(16, 1, 1, 5, 6), (16, 1, 4, 8, 8), (24, 3, 2, 6, 10), (32, 2, 4, 9, 13)]
    with Checker("efficient self-attention (sequence reduction)") as c:
        gen = _core.generator(9)
        for dim, heads, sr, H, W in cases:
            _core.manual_seed(dim + heads + sr)
            ref = EfficientSelfAttention(dim, num_heads=heads, sr_ratio=sr).eval()
            if sr > 1:
                with torch.no_grad():
                    ref.norm.weight.uniform_(0.5, 1.5)
                    ref.norm.bias.uniform_(-0.5, 0.5)
            kwargs = dict(dim=dim, num_heads=heads, sr_ratio=sr)
            student = _build(c, cls, kwargs, ref)
            if student is None:
                break
            x = torch.randn(2, H * W, dim, generator=gen)
            what = f"{kwargs} on a {H}×{W} grid"
            out = _run(c, what, lambda: student(x, H, W))
            if out is not None:
                c.close(out, ref(x, H, W), what,
                        "keys and values come from LN(sr(x as a (B, C, H, W) map)); split kv into K then V; "
                        "scale by head_dim ** -0.5 and merge heads back to (B, N, C) before proj")


@register("mix_ffn", forbid=["tutorial_lib.layers.mix_ffn.MixFFN"],
          names=["MixFFN"], description="MixFFN(dim, hidden_dim): (x, H, W) -> (B, N, C)")
def check_mix_ffn(cls: Any) -> None:
    """Check a student's ``MixFFN(dim, hidden_dim)`` class (no residual inside).

    ``fc1`` → 3×3 depthwise ``dwconv`` (padding 1, bias) on the ``H × W`` grid → GELU → ``fc2``; the
    output must equal :class:`tutorial_lib.layers.mix_ffn.MixFFN` on square and non-square grids.
    """
    cases = [(8, 32, 4, 4), (16, 64, 5, 7), (12, 24, 9, 3)]
    with Checker("Mix-FFN") as c:
        gen = _core.generator(10)
        for dim, hidden, H, W in cases:
            _core.manual_seed(dim + hidden)
            ref = MixFFN(dim, hidden).eval()
            kwargs = dict(dim=dim, hidden_dim=hidden)
            student = _build(c, cls, kwargs, ref)
            if student is None:
                break
            x = torch.randn(2, H * W, dim, generator=gen)
            what = f"{kwargs} on a {H}×{W} grid"
            out = _run(c, what, lambda: student(x, H, W))
            if out is not None:
                c.close(out, ref(x, H, W), what,
                        "reshape (B, N, hidden) to (B, hidden, H, W) row-major before the depthwise conv "
                        "(groups=hidden, padding=1), apply GELU after it, and do not add the residual")
