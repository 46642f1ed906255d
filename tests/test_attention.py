"""Multi-head self-attention: the explicit softmax(QKᵀ/√d)V path equals the SDPA path."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tutorial_lib.layers.attention import Attention, attention_explicit
from tutorial_lib.profiling import count_macs


def test_explicit_equals_sdpa_function() -> None:
    q, k, v = torch.randn(3, 2, 4, 10, 8).unbind(0)
    out, weights = attention_explicit(q, k, v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v))
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 10))


def test_module_paths_agree_and_return_maps() -> None:
    attn = Attention(dim=48, num_heads=6).eval()
    x = torch.randn(2, 17, 48)
    fused = attn(x)
    explicit, maps = attn(x, return_attention=True)
    torch.testing.assert_close(fused, explicit)
    assert maps.shape == (2, 6, 17, 17)
    attn.fused = False
    torch.testing.assert_close(attn(x), fused)


def test_module_matches_a_per_head_loop() -> None:
    dim, heads = 32, 4
    attn = Attention(dim, heads).eval()
    x = torch.randn(1, 9, dim)
    q, k, v = attn.qkv(x)[0].split(dim, dim=-1)  # (N, D) each
    d = dim // heads
    outs = []
    for h in range(heads):
        s = slice(h * d, (h + 1) * d)
        outs.append(torch.softmax(q[:, s] @ k[:, s].T / math.sqrt(d), dim=-1) @ v[:, s])
    want = attn.proj(torch.cat(outs, dim=-1))[None]
    torch.testing.assert_close(attn(x), want)


def test_attention_macs_are_quadratic_in_tokens() -> None:
    attn = Attention(dim=32, num_heads=4)
    small = count_macs(attn, torch.randn(1, 16, 32)).by_operator.get("scaled_dot_product_attention", 0)
    large = count_macs(attn, torch.randn(1, 64, 32)).by_operator.get("scaled_dot_product_attention", 0)
    assert small == 2 * 16 * 16 * 32  # QKᵀ and AV: N·N·d per head, 4 heads of d=8
    assert large == 16 * small  # 4× tokens -> 16× attention MACs


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="divisible by num_heads=5"):
        Attention(32, 5)
    with pytest.raises(ValueError, match="token dimension C=32"):
        Attention(32, 4)(torch.randn(1, 5, 16))
    with pytest.raises(ValueError, match="expected q"):
        attention_explicit(torch.randn(2, 5, 8), torch.randn(2, 5, 4), torch.randn(2, 5, 4))
