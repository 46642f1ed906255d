"""ViT patch embedding: patchify = unfold, linear on patches = Conv2d(kernel=stride=P)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from tutorial_lib.layers.patch_embed import PatchEmbed, patchify, unpatchify


@pytest.mark.parametrize("p", [2, 4, 16])
def test_patchify_equals_unfold(p: int) -> None:
    x = torch.randn(2, 3, 4 * p, 3 * p)
    got = patchify(x, p)
    want = F.unfold(x, kernel_size=p, stride=p).transpose(1, 2)
    assert got.shape == (2, 12, 3 * p * p)
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_patchify_raster_order_and_first_patch() -> None:
    x = torch.arange(2 * 8 * 8, dtype=torch.float32).reshape(1, 2, 8, 8)
    patches = patchify(x, 4)
    assert torch.equal(patches[0, 1], x[0, :, 0:4, 4:8].reshape(-1))  # second patch = top row, right
    assert torch.equal(patches[0, 2], x[0, :, 4:8, 0:4].reshape(-1))  # third = second row, left


@settings(max_examples=25, deadline=None)
@given(p=st.sampled_from([1, 2, 4, 8]), gh=st.integers(1, 5), gw=st.integers(1, 5), c=st.integers(1, 4))
def test_unpatchify_inverts_patchify(p: int, gh: int, gw: int, c: int) -> None:
    x = torch.randn(1, c, gh * p, gw * p)
    patches = patchify(x, p)
    assert patches.shape == (1, gh * gw, c * p * p)  # N = HW / P²
    assert torch.equal(unpatchify(patches, (gh, gw), p), x)


def test_linear_projection_equals_conv_with_weight_mapping() -> None:
    embed = PatchEmbed(img_size=64, patch_size=16, in_chans=3, embed_dim=32)
    x = torch.randn(2, 3, 64, 64)
    linear = torch.nn.Linear(3 * 16 * 16, 32)
    with torch.no_grad():
        linear.weight.copy_(embed.proj.weight.reshape(32, -1))
        linear.bias.copy_(embed.proj.bias)
    torch.testing.assert_close(linear(patchify(x, 16)), embed(x))
    assert embed(x).shape == (2, 16, 32)
    assert embed.grid_size == (4, 4) and embed.num_patches == 16


def test_mapping_with_the_wrong_flatten_order_fails() -> None:
    # the test above could not pass by accident: (P, P, C) flattening gives other numbers
    embed = PatchEmbed(img_size=32, patch_size=8, in_chans=3, embed_dim=8)
    x = torch.randn(1, 3, 32, 32)
    wrong = embed.proj.weight.permute(0, 2, 3, 1).reshape(8, -1)
    patches = patchify(x, 8)
    assert not torch.allclose(patches @ wrong.T + embed.proj.bias, embed(x), atol=1e-3)


@pytest.mark.parametrize("shape, match", [((1, 3, 30, 32), "divisible by the patch size 16"),
                                          ((1, 3, 32, 33), "divisible by the patch size 16"),
                                          ((1, 1, 32, 32), "3 input channels"),
                                          ((3, 32, 32), "4-D tensor")])
def test_bad_input_raises(shape, match) -> None:
    with pytest.raises(ValueError, match=match):
        PatchEmbed(img_size=32, patch_size=16)(torch.randn(*shape))


def test_bad_configuration_raises() -> None:
    with pytest.raises(ValueError, match="divisible by the patch size 16"):
        PatchEmbed(img_size=100, patch_size=16)
    with pytest.raises(ValueError, match="positive integer"):
        PatchEmbed(patch_size=0)
    with pytest.raises(ValueError, match="expected N=4 patches"):
        unpatchify(torch.randn(1, 5, 12), (2, 2), 2)


def test_patch_grid_figure_fits_the_column():
    """The static twin of the patch explorer: two panels a row, 7 inches wide (the book's
    column), one axis per patch size (a spare cell is switched off)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tutorial_lib.widgets.transformers import patch_grid_figure

    fig = patch_grid_figure(torch.rand(3, 64, 64), patch_sizes=(32, 16, 8))
    assert fig.get_size_inches()[0] == 7.0
    assert sum(ax.axison for ax in fig.axes) == 3
    plt.close(fig)
