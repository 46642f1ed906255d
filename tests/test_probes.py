"""Position probes of chapter 10: the border law, the control without convolution, the read-outs."""

from __future__ import annotations

import pytest
import torch

from tutorial_lib import probes


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_zero_padding_gives_2d_plus_1_squared_kinds_of_position(depth: int) -> None:
    side = 16
    f = probes.stack_features(depth, side, 32)
    assert probes.distinct_tokens(f) == (2 * depth + 1) ** 2
    # the count does not sit on its tolerance: equal rows are equal to rounding,
    # different rows are far apart
    assert probes.smallest_gap(f) > 1e-10
    d = probes._pairwise(f)
    assert float(d[d < 1e-12].max()) < 1e-14


def test_without_convolution_or_with_circular_padding_no_position() -> None:
    side = 12
    for f in (
        probes.stack_features(3, side, 16, conv=False),
        probes.stack_features(3, side, 16, padding_mode="circular"),
    ):
        assert probes.distinct_tokens(f) == 1
        assert probes.smallest_gap(f) == float("inf")
        assert probes.position_r2(f, side) < 0.01


def test_probe_reads_position_from_a_linear_code() -> None:
    side = 10
    r, c = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    feats = torch.stack(
        [r.flatten(), c.flatten(), torch.randn(side * side)], 1
    ).float()
    assert probes.position_r2(feats, side) > 0.99


def test_stack_shapes_and_validation() -> None:
    stack = probes.FFNStack(2, 8, conv=False)
    x = torch.randn(1, 12, 8)
    assert stack(x, 3, 4).shape == (1, 12, 8)
    assert isinstance(stack.ffns[0].dwconv, torch.nn.Identity)
    assert probes.constant_tokens(4, 8).shape == (1, 16, 8)
    with pytest.raises(ValueError, match="depth"):
        probes.FFNStack(0, 8)
    with pytest.raises(ValueError, match="position_r2"):
        probes.position_r2(torch.randn(10, 3), 4)
    with pytest.raises(ValueError, match="padding_mode"):
        probes.FFNStack(1, 8, padding_mode="mirror")
