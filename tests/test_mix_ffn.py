"""MixFFN: shapes, equivalence with a naive version and with transformers, the border leak, validation."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tutorial_lib.layers.mix_ffn import MixFFN


def naive_mix_ffn(m: MixFFN, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """Eq. 3 without the residual, with the depthwise conv as an explicit 3×3 loop."""
    h = x @ m.fc1.weight.T + m.fc1.bias  # (B, N, hidden)
    grid = F.pad(h.reshape(x.shape[0], H, W, -1), (0, 0, 1, 1, 1, 1))  # zero padding
    out = torch.zeros_like(h.reshape(x.shape[0], H, W, -1))
    k = m.dwconv.weight[:, 0]  # (hidden, 3, 3)
    for dy in range(3):
        for dx in range(3):
            out = out + grid[:, dy:dy + H, dx:dx + W] * k[:, dy, dx]
    out = F.gelu(out + m.dwconv.bias).reshape(x.shape[0], H * W, -1)
    return out @ m.fc2.weight.T + m.fc2.bias


def test_matches_naive_equation() -> None:
    m = MixFFN(16, 64).eval()
    x = torch.randn(2, 7 * 5, 16)
    torch.testing.assert_close(m(x, 7, 5), naive_mix_ffn(m, x, 7, 5), atol=1e-5, rtol=1e-4)


def test_parameter_names_and_count() -> None:
    m = MixFFN(32, 128)
    assert [n for n, _ in m.named_parameters()] == [
        "fc1.weight", "fc1.bias", "dwconv.weight", "dwconv.bias", "fc2.weight", "fc2.bias"]
    # fc1 + depthwise 3×3 with bias + fc2 (papers.md §7).
    assert sum(p.numel() for p in m.parameters()) == (32 * 128 + 128) + (9 * 128 + 128) + (128 * 32 + 32)


def test_equivalent_to_transformers_mix_mlp() -> None:
    from transformers import SegformerConfig
    from transformers.models.segformer.modeling_segformer import SegformerMixMLP

    ours = MixFFN(64, 256).eval()
    hf = SegformerMixMLP(SegformerConfig(), in_features=64, hidden_features=256).eval()
    state = {k.replace("dwconv.", "dwconv.dwconv."): v for k, v in ours.state_dict().items()}
    hf.load_state_dict(state)
    x = torch.randn(2, 9 * 13, 64)
    torch.testing.assert_close(ours(x, 9, 13), hf(x, 9, 13))


def test_constant_input_gives_position_dependent_output_only_with_conv() -> None:
    # Zero padding makes border tokens differ from interior ones for a constant input;
    # without the depthwise conv every token would be identical.
    m = MixFFN(8, 32).eval()
    x = torch.ones(1, 6 * 6, 8)
    with torch.no_grad():
        out = m(x, 6, 6).reshape(6, 6, 8)
    interior = out[1:-1, 1:-1]
    assert torch.allclose(interior, interior[0, 0].expand_as(interior), atol=1e-6)
    assert not torch.allclose(out[0, 0], out[2, 2], atol=1e-4)
    assert not torch.allclose(out[0, 0], out[0, 2], atol=1e-4)  # corner vs edge


def test_translation_equivariance_away_from_borders() -> None:
    m = MixFFN(4, 8).eval()
    x = torch.zeros(1, 12, 12, 4)
    x[0, 5, 5] = torch.randn(4)
    y = x.roll(shifts=(2, 1), dims=(1, 2))
    with torch.no_grad():
        a = m(x.reshape(1, 144, 4), 12, 12).reshape(12, 12, 4)
        b = m(y.reshape(1, 144, 4), 12, 12).reshape(12, 12, 4)
    # b[i, j] = a[i - 2, j - 1] wherever neither position touches the zero-padded border.
    torch.testing.assert_close(b[3:11, 2:11], a[1:9, 1:10])
    # ...and only there: a[0, 0] saw the padding, its shifted copy b[2, 1] does not.
    assert not torch.allclose(b[2, 1], a[0, 0], atol=1e-4)


@pytest.mark.parametrize("x, H, W, match", [
    (torch.randn(1, 20, 8), 4, 4, r"N = H·W = 4·4 = 16 tokens, got N=20"),
    (torch.randn(1, 16, 9), 4, 4, "C=8"),
    (torch.randn(16, 8), 4, 4, "3-D"),
    (torch.randn(1, 16, 8), 0, 4, "MixFFN H"),
])
def test_bad_inputs_raise(x: torch.Tensor, H: int, W: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MixFFN(8, 16)(x, H, W)


@pytest.mark.parametrize("kwargs, match", [
    (dict(dim=0, hidden_dim=4), "dim"), (dict(dim=4, hidden_dim=0), "hidden_dim"),
    (dict(dim=4, hidden_dim=8, drop=1.0), "probability"),
])
def test_bad_configuration_raises(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MixFFN(**kwargs)


def test_without_conv_a_constant_input_carries_no_position() -> None:
    # Chapter 10's control: the same layer with the depthwise conv removed is token-wise, so a
    # constant token map stays constant (nothing for a position probe to decode).
    m = MixFFN(8, 32).eval()
    m.dwconv = torch.nn.Identity()
    with torch.no_grad():
        out = m(torch.ones(1, 36, 8), 6, 6)[0]
    torch.testing.assert_close(out, out[:1].expand_as(out))


def test_tiled_input_changes_only_near_the_seam() -> None:
    # Chapter 10's resolution experiment: a 2×2 tiling of a map leaves the top-left copy's outputs
    # unchanged except within one token (the 3×3 reach) of the seam.
    m = MixFFN(4, 16).eval()
    x = torch.randn(1, 8, 8, 4)
    big = x.repeat(1, 2, 2, 1)
    with torch.no_grad():
        alone = m(x.reshape(1, 64, 4), 8, 8).reshape(8, 8, 4)
        tiled = m(big.reshape(1, 256, 4), 16, 16).reshape(16, 16, 4)[:8, :8]
    torch.testing.assert_close(tiled[:7, :7], alone[:7, :7])
    assert not torch.allclose(tiled[7], alone[7], atol=1e-4)


@pytest.mark.parametrize("depth", [1, 2])
def test_border_leak_gives_2d_plus_1_squared_kinds_of_position(depth: int) -> None:
    """Chapter 10: on a constant token map, d residual Mix-FFN blocks distinguish (2d+1)² positions
    (rows and columns within d tokens of a border, plus the interior), counted with exact distances."""
    torch.manual_seed(0)
    dim, side = 64, 16
    x = torch.randn(dim).expand(1, side * side, dim).contiguous()
    with torch.no_grad():
        for _ in range(depth):
            x = x + MixFFN(dim, 4 * dim).eval()(torch.nn.LayerNorm(dim)(x), side, side)
    dist = torch.cdist(x[0], x[0], compute_mode="donot_use_mm_for_euclid_dist")
    kinds = {tuple(row.nonzero().flatten().tolist()) for row in dist < 1e-4}
    assert len(kinds) == (2 * depth + 1) ** 2
