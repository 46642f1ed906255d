"""OverlapPatchEmbed: output sizes (incl. odd inputs), the size formula, validation, HF equivalence."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tutorial_lib.layers.overlap_patch_embed import OverlapPatchEmbed, overlap_output_size

# (K, S) of SegFormer's stage 1 and of stages 2-4 (Xie et al. 2021, Table 6).
STAGES = [(7, 4), (3, 2)]


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 31, 33, 97, 100, 127, 513, 600])
@pytest.mark.parametrize("k,s", STAGES)
def test_output_size_matches_conv_for_odd_and_even_inputs(size: int, k: int, s: int) -> None:
    embed = OverlapPatchEmbed(in_chans=3, embed_dim=8, patch_size=k, stride=s)
    tokens, h, w = embed(torch.randn(1, 3, size, size + 1))
    assert (h, w) == (overlap_output_size(size, k, s), overlap_output_size(size + 1, k, s))
    assert tokens.shape == (1, h * w, 8)
    # For odd K the padding K//2 makes the output ceil(size / S): nothing at the border is lost.
    assert h == math.ceil(size / s)


def test_pyramid_of_four_stages_gives_strides_4_8_16_32() -> None:
    dims = [3, 32, 64, 160, 256]
    x = torch.randn(1, 3, 512, 512)
    sizes = []
    for i, (k, s) in enumerate([(7, 4), (3, 2), (3, 2), (3, 2)]):
        tokens, h, w = OverlapPatchEmbed(dims[i], dims[i + 1], k, s)(x)
        sizes.append((h, w))
        x = tokens.transpose(1, 2).reshape(1, dims[i + 1], h, w)
    assert sizes == [(128, 128), (64, 64), (32, 32), (16, 16)]


@settings(max_examples=100, deadline=None)
@given(size=st.integers(1, 400), k=st.integers(1, 9), s=st.integers(1, 8))
def test_size_formula_property(size: int, k: int, s: int) -> None:
    got = overlap_output_size(size, k, s)
    # The formula agrees with PyTorch's convolution output-size rule with padding K//2.
    conv = torch.nn.Conv2d(1, 1, k, s, padding=k // 2)
    assert conv(torch.zeros(1, 1, size, 1)).shape[2] == got
    if k % 2 == 1:
        assert got == -(-size // s)  # ceil(size / S) for odd kernels
    if k - k // 2 >= s:  # true for SegFormer's (7, 4) and (3, 2): no pixel is left out
        last_covered = (got - 1) * s - k // 2 + k - 1  # last pixel of the last window
        assert last_covered >= size - 1


def test_layernorm_and_names_match_official_code() -> None:
    embed = OverlapPatchEmbed(3, 32, 7, 4)
    assert set(dict(embed.named_parameters())) == {"proj.weight", "proj.bias", "norm.weight", "norm.bias"}
    assert embed.norm.eps == 1e-5
    assert embed.proj.padding == (3, 3)
    tokens, _, _ = embed(torch.randn(2, 3, 40, 40))
    # LayerNorm over channels with default affine: each token has mean 0, variance 1.
    torch.testing.assert_close(tokens.mean(-1), torch.zeros(2, 100), atol=1e-5, rtol=0)


def test_equivalent_to_transformers_patch_embeddings() -> None:
    from transformers.models.segformer.modeling_segformer import SegformerOverlapPatchEmbeddings

    ours = OverlapPatchEmbed(32, 64, 3, 2).eval()
    hf = SegformerOverlapPatchEmbeddings(patch_size=3, stride=2, num_channels=32, hidden_size=64).eval()
    hf.proj.load_state_dict(ours.proj.state_dict())
    hf.layer_norm.load_state_dict(ours.norm.state_dict())
    x = torch.randn(2, 32, 29, 35)
    got, h, w = ours(x)
    want, hh, ww = hf(x)
    assert (h, w) == (hh, ww) == (15, 18)
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("bad, match", [
    (torch.randn(3, 16, 16), "4-D"),
    (torch.randn(1, 4, 16, 16), "3 input channels"),
    ("image", "torch.Tensor"),
])
def test_bad_inputs_raise_value_error(bad: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        OverlapPatchEmbed(3, 8)(bad)


@pytest.mark.parametrize("kwargs", [dict(embed_dim=0), dict(patch_size=-1), dict(stride=0), dict(in_chans=2.5)])
def test_bad_configuration_raises(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="expected a positive integer"):
        OverlapPatchEmbed(**kwargs)


def test_formula_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="size"):
        overlap_output_size(0, 7, 4)
