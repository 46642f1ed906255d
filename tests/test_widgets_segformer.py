"""The colour-attention explorer of chapter 09: the hand-set head attends to similar colours."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from tutorial_lib.widgets.segformer import (
    attention_explorer,
    colour_attention_head,
    colour_tokens,
    plot_colour_attention,
)


def two_colour_image() -> torch.Tensor:
    image = torch.zeros(3, 64, 64)
    image[0, :, :32] = 0.9  # left half red
    image[2, :, 32:] = 0.9  # right half blue
    return image


@pytest.mark.parametrize("sr", [2, 4, 8])
def test_query_attends_to_its_own_colour(sr: int) -> None:
    tokens, h, w = colour_tokens(two_colour_image())
    assert (h, w) == (16, 16) and tokens.shape == (1, 256, 16)
    head = colour_attention_head(16, sr)
    attn = head.attention_map(tokens, h, w)[0, 0]  # (N, N_r)
    hr, wr = head.reduced_size(h, w)
    left = torch.zeros(hr, wr, dtype=torch.bool)
    left[:, : wr // 2] = True
    query_left, query_right = 5 * w + 2, 5 * w + 13
    assert attn[query_left].reshape(hr, wr)[left].sum() > 0.95
    assert attn[query_right].reshape(hr, wr)[~left].sum() > 0.95


def test_sr_conv_averages_windows() -> None:
    head = colour_attention_head(4, 2)
    x = torch.randn(1, 16, 4)
    pooled = (
        torch.nn.functional.avg_pool2d(x.transpose(1, 2).reshape(1, 4, 4, 4), 2)
        .flatten(2)
        .transpose(1, 2)
    )
    torch.testing.assert_close(
        head.sr(x.transpose(1, 2).reshape(1, 4, 4, 4)).flatten(2).transpose(1, 2),
        pooled,
    )


def test_static_figure_and_explorer_build() -> None:
    import matplotlib.pyplot as plt

    fig = plot_colour_attention(
        two_colour_image(), {"red": (3, 3), "blue": (3, 12)}, ratios=(4, 2)
    )
    assert len(fig.axes) == 6 + 2  # 2 rows × (image + 2 maps), a colour bar per row
    plt.close(fig)
    widget = attention_explorer(two_colour_image())
    assert len(widget.children) == 2
    out = widget.children[1]
    assert (
        len(out.outputs) == 1 and "image/png" in out.outputs[0]["data"]
    )  # drawn without a front end
    widget.children[0].children[
        2
    ].value = 4  # moving the sr slider redraws in place
    assert len(out.outputs) == 1
    plt.close("all")


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        colour_tokens(torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="outside the 16×16 token grid"):
        plot_colour_attention(two_colour_image(), {"q": (20, 0)})


def test_block_attention_of_a_segformer():
    """block_attention: rows sum to one; grids as the stage and its sr ratio give them;
    bad stage/block indices raise ValueError."""
    import pytest
    import torch

    from tutorial_lib.models.segformer import segformer_b0
    from tutorial_lib.widgets.segformer import block_attention

    torch.manual_seed(0)
    model = segformer_b0(num_classes=3).eval()
    weights, grid, keys = block_attention(model, torch.rand(1, 3, 64, 64), stage=0)
    assert grid == (16, 16) and keys == (2, 2)
    assert weights.shape == (1, 1, 256, 4)
    torch.testing.assert_close(weights.sum(-1), torch.ones(1, 1, 256))
    with pytest.raises(ValueError, match="stage"):
        block_attention(model, torch.rand(1, 3, 64, 64), stage=4)
    with pytest.raises(ValueError, match="blocks"):
        block_attention(model, torch.rand(1, 3, 64, 64), stage=0, block=5)


def test_own_key_covers_each_query() -> None:
    from tutorial_lib.widgets.segformer import own_key

    keys = own_key(8, 8, 4).reshape(8, 8)
    assert (
        keys[0, 0] == 0 and keys[0, 7] == 1 and keys[7, 0] == 2 and keys[7, 7] == 3
    )
    # a remainder row/column (dropped by the reduction) goes to the last key
    assert own_key(9, 9, 4).reshape(9, 9)[8, 8] == 3
    assert torch.equal(own_key(5, 3, 1), torch.arange(15))


def test_attention_stats_of_a_segformer() -> None:
    from tutorial_lib.compare import capstone_segformer
    from tutorial_lib.widgets.segformer import attention_stats

    torch.manual_seed(0)
    model = capstone_segformer().eval()
    images = torch.rand(5, 3, 64, 64)
    stats = attention_stats(model, images, stage=0, batch=2)
    assert (
        stats.queries == (16, 16) and stats.keys == (4, 4) and stats.num_keys == 16
    )
    for share in (stats.hardly_selects, stats.own_region):
        assert 0.0 <= share <= 1.0
    assert 1.0 <= stats.peak <= 16.0
    last = attention_stats(model, images, stage=3)
    assert last.keys == last.queries == (2, 2)
