"""EfficientSelfAttention: literal eq. 2 ⇔ strided conv, SDPA = explicit path, cost formula, HF, validation."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from tutorial_lib.layers.efficient_attention import (EfficientSelfAttention, SequenceReductionLiteral,
                                                      conv_weight_to_linear, efficient_attention_macs,
                                                      linear_weight_to_conv)
from tutorial_lib.profiling import count_macs


class _Grid(nn.Module):
    """Binds H and W so that count_macs can trace a (x, H, W) module with one tensor input."""

    def __init__(self, module: nn.Module, H: int, W: int) -> None:
        super().__init__()
        self.module, self.H, self.W = module, H, W

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x, self.H, self.W)


def naive_attention(m: EfficientSelfAttention, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """Single- or multi-head attention with loops over heads and the reduction by the literal eq. 2."""
    b, n, c = x.shape
    kv_in = x
    if m.sr_ratio > 1:
        lit = SequenceReductionLiteral.from_conv(m.sr)
        kv_in = torch.nn.functional.layer_norm(lit(x, H, W), (c,), m.norm.weight, m.norm.bias, m.norm.eps)
    q = m.q(x)
    k, v = m.kv(kv_in).split(c, dim=-1)
    d = c // m.num_heads
    heads = []
    for i in range(m.num_heads):
        qi, ki, vi = (t[..., i * d:(i + 1) * d] for t in (q, k, v))
        a = torch.softmax(qi @ ki.transpose(1, 2) / d ** 0.5, dim=-1)
        heads.append(a @ vi)
    return m.proj(torch.cat(heads, dim=-1))


@pytest.mark.parametrize("sr", [2, 4, 8])
def test_literal_window_reduction_equals_strided_conv(sr: int) -> None:
    conv = nn.Conv2d(16, 16, sr, stride=sr)
    H, W = 2 * sr, 3 * sr
    x = torch.randn(2, H * W, 16)
    lit = SequenceReductionLiteral.from_conv(conv)
    assert lit.linear.in_features == 16 * sr * sr  # Linear(C·R, C) with R = sr²
    want = conv(x.transpose(1, 2).reshape(2, 16, H, W)).flatten(2).transpose(1, 2)
    torch.testing.assert_close(lit(x, H, W), want, atol=1e-5, rtol=1e-4)
    # ...and back: a random literal layer maps to a conv computing the same function.
    lit2 = SequenceReductionLiteral(16, sr * sr, grouping="window")
    conv2 = lit2.to_conv()
    want2 = conv2(x.transpose(1, 2).reshape(2, 16, H, W)).flatten(2).transpose(1, 2)
    torch.testing.assert_close(lit2(x, H, W), want2, atol=1e-5, rtol=1e-4)


def test_weight_maps_are_inverse() -> None:
    w = torch.randn(8, 5, 4, 4)
    assert conv_weight_to_linear(w).shape == (8, 80)
    torch.testing.assert_close(linear_weight_to_conv(conv_weight_to_linear(w), 4), w)
    lin = torch.randn(8, 80)
    torch.testing.assert_close(conv_weight_to_linear(linear_weight_to_conv(lin, 4)), lin)


def test_raster_reshape_is_not_the_conv() -> None:
    # The literal reshape of a raster sequence groups R pixels of one row, not an sr×sr window:
    # the same weights give a different operator.
    conv = nn.Conv2d(4, 4, 2, stride=2)
    lit = SequenceReductionLiteral.from_conv(conv)
    raster = SequenceReductionLiteral(4, 4, grouping="raster")
    raster.load_state_dict(lit.state_dict())
    x = torch.randn(1, 8 * 8, 4)
    assert not torch.allclose(raster(x, 8, 8), lit(x, 8, 8), atol=1e-3)
    torch.testing.assert_close(raster(x, 8, 8), raster.linear(x.reshape(1, 16, 16)))


@pytest.mark.parametrize("dim,heads,sr,H,W", [(32, 1, 8, 16, 16), (64, 2, 4, 12, 10), (160, 5, 2, 7, 9),
                                               (256, 8, 1, 5, 5), (32, 1, 8, 17, 23)])
def test_sdpa_equals_explicit_and_naive(dim: int, heads: int, sr: int, H: int, W: int) -> None:
    m = EfficientSelfAttention(dim, heads, sr).eval()
    x = torch.randn(2, H * W, dim)
    out = m(x, H, W)
    out_explicit, attn = m.explicit(x, H, W)
    torch.testing.assert_close(out, out_explicit, atol=1e-5, rtol=1e-4)
    hr, wr = m.reduced_size(H, W)
    assert attn.shape == (2, heads, H * W, hr * wr)
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, heads, H * W))
    if H % sr == 0 and W % sr == 0:
        torch.testing.assert_close(out, naive_attention(m, x, H, W), atol=1e-5, rtol=1e-4)


def test_reduction_shortens_keys_by_sr_squared() -> None:
    m = EfficientSelfAttention(32, 1, sr_ratio=8)
    attn = m.attention_map(torch.randn(1, 128 * 128, 32), 128, 128)
    assert attn.shape[-2:] == (128 * 128, 128 * 128 // 64)  # the paper's R = 64 = 8²


@pytest.mark.parametrize("dim,heads,sr,H,W", [(32, 1, 8, 32, 24), (64, 2, 4, 16, 16), (160, 5, 2, 9, 7),
                                               (256, 8, 1, 4, 6), (32, 1, 8, 33, 41)])
def test_cost_formula_matches_count_macs(dim: int, heads: int, sr: int, H: int, W: int) -> None:
    m = EfficientSelfAttention(dim, heads, sr)
    counted = count_macs(_Grid(m, H, W), torch.randn(1, H * W, dim)).total
    assert counted == efficient_attention_macs(H, W, dim, sr)


@pytest.mark.parametrize("sr", [1, 2, 4, 8])
def test_attention_term_is_2_n_squared_c_over_r(sr: int) -> None:
    # The SDPA operator's measured MACs are 2·N·(N/R)·C with R = sr²: O(N²/R).
    dim, measured = 32, []
    for side in (16, 32):
        m = EfficientSelfAttention(dim, 1, sr)
        by_op = count_macs(_Grid(m, side, side), torch.randn(1, side * side, dim)).by_operator
        n = side * side
        assert by_op["scaled_dot_product_attention"] == 2 * n * n * dim // sr ** 2
        measured.append(by_op["scaled_dot_product_attention"])
    assert measured[1] == 16 * measured[0]  # doubling the side: N ×4, attention ×16


def test_equivalent_to_transformers_attention() -> None:
    from transformers import SegformerConfig
    from transformers.models.segformer.modeling_segformer import SegformerAttention

    ours = EfficientSelfAttention(64, 2, 4).eval()
    config = SegformerConfig()
    config._attn_implementation = "eager"
    hf = SegformerAttention(config, hidden_size=64, num_attention_heads=2, sequence_reduction_ratio=4).eval()
    s = ours.state_dict()
    hf.load_state_dict({
        "q_proj.weight": s["q.weight"], "q_proj.bias": s["q.bias"],
        "k_proj.weight": s["kv.weight"][:64], "k_proj.bias": s["kv.bias"][:64],
        "v_proj.weight": s["kv.weight"][64:], "v_proj.bias": s["kv.bias"][64:],
        "o_proj.weight": s["proj.weight"], "o_proj.bias": s["proj.bias"],
        "sequence_reduction.sequence_reduction.weight": s["sr.weight"],
        "sequence_reduction.sequence_reduction.bias": s["sr.bias"],
        "sequence_reduction.layer_norm.weight": s["norm.weight"],
        "sequence_reduction.layer_norm.bias": s["norm.bias"],
    })
    x = torch.randn(2, 18 * 13, 64)
    want, weights = hf(x, 18, 13)
    got, attn = ours.explicit(x, 18, 13)
    torch.testing.assert_close(ours(x, 18, 13), want, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(attn, weights, atol=1e-6, rtol=1e-4)


def test_structure_matches_official_code() -> None:
    m = EfficientSelfAttention(64, 2, 4)
    assert {n for n, _ in m.named_parameters()} == {
        "q.weight", "q.bias", "kv.weight", "kv.bias", "proj.weight", "proj.bias",
        "sr.weight", "sr.bias", "norm.weight", "norm.bias"}
    assert m.norm.eps == 1e-5 and m.sr.kernel_size == (4, 4) and m.sr.stride == (4, 4)
    assert not hasattr(EfficientSelfAttention(64, 2, 1), "sr")
    assert EfficientSelfAttention(64, 2, qkv_bias=False).q.bias is None


def test_dropout_only_in_training() -> None:
    m = EfficientSelfAttention(16, 2, 2, attn_drop=0.5)
    x = torch.randn(1, 64, 16)
    m.eval()
    torch.testing.assert_close(m(x, 8, 8), m(x, 8, 8))
    m.train()
    assert not torch.allclose(m(x, 8, 8), m(x, 8, 8))


@pytest.mark.parametrize("kwargs, match", [
    (dict(dim=30, num_heads=4), "divisible by num_heads"), (dict(dim=32, sr_ratio=0), "sr_ratio"),
    (dict(dim=0), "dim"), (dict(dim=32, num_heads=0), "num_heads"), (dict(dim=32, attn_drop=1.5), "probability"),
])
def test_bad_configuration_raises(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EfficientSelfAttention(**kwargs)


@pytest.mark.parametrize("x, H, W, match", [
    (torch.randn(1, 60, 32), 8, 8, r"N = H·W = 8·8 = 64 tokens, got N=60"),
    (torch.randn(1, 64, 16), 8, 8, "C=32"),
    (torch.randn(64, 32), 8, 8, "3-D"),
    (torch.randn(1, 12, 32), 3, 4, "H and W >= sr_ratio=4"),
])
def test_bad_inputs_raise(x: torch.Tensor, H: int, W: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EfficientSelfAttention(32, 1, 4)(x, H, W)


def test_literal_validation() -> None:
    with pytest.raises(ValueError, match="square number"):
        SequenceReductionLiteral(8, 8, grouping="window")
    with pytest.raises(ValueError, match="divisible by s=2"):
        SequenceReductionLiteral(8, 4)(torch.randn(1, 15, 8), 3, 5)
    with pytest.raises(ValueError, match="divisible by R=4"):
        SequenceReductionLiteral(8, 4, grouping="raster")(torch.randn(1, 15, 8), 3, 5)
    with pytest.raises(ValueError, match="grouping"):
        SequenceReductionLiteral(8, 4, grouping="rows")
    with pytest.raises(ValueError, match="kernel = stride"):
        SequenceReductionLiteral.from_conv(nn.Conv2d(8, 8, 3, stride=2))
    with pytest.raises(ValueError, match="grouping='window'"):
        SequenceReductionLiteral(8, 4, grouping="raster").to_conv()
    with pytest.raises(ValueError, match="C_out, C_in, s, s"):
        conv_weight_to_linear(torch.randn(3, 3))


def test_stage1_reduction_at_512() -> None:
    # Chapter 09: MiT-B0 stage 1 at 512² (128×128 tokens, C=32). Without reduction one attention
    # layer would cost more than the whole SegFormer-B0 (8.4 GMACs, paper Table 1); sr=8 makes it
    # about 54× cheaper; even so the quadratic term is most of the layer's cost (C is small there).
    full = efficient_attention_macs(128, 128, 32, 1)
    reduced = efficient_attention_macs(128, 128, 32, 8)
    assert full > 8.4e9
    assert 50 < full / reduced < 60
    assert 0.8 < 2 * (128 * 128) ** 2 * 32 / 64 / reduced < 0.9
