"""Depthwise separable convolution: the cost formulas equal fvcore's count of real layers exactly."""
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tutorial_lib.layers.separable import (SeparableConv2d, depthwise_conv_macs, pointwise_conv_macs,
                                           separable_cost_ratio, standard_conv_macs)
from tutorial_lib.profiling import count_macs, count_params


def test_ratio_formula_value():
    assert separable_cost_ratio(1024, 3) == Fraction(1, 1024) + Fraction(1, 9)
    assert round(float(separable_cost_ratio(1024, 3)), 3) == 0.112
    # MobileNets' "8 to 9 times less computation" for 3×3 kernels
    assert 8 < 1 / float(separable_cost_ratio(512, 3)) < 9


@pytest.mark.parametrize("m,n,k,g", [(1024, 1024, 3, 7), (32, 64, 3, 16), (16, 8, 5, 9), (24, 1024, 3, 5)])
def test_fvcore_ratio_equals_formula_exactly(m, n, k, g):
    x = torch.randn(1, m, g, g)
    standard = nn.Conv2d(m, n, k, padding=k // 2, bias=False)
    separable = SeparableConv2d(m, n, k, norm=False)
    macs_standard = count_macs(standard, x).total
    macs_separable = count_macs(separable, x).total
    assert macs_standard == standard_conv_macs(m, n, k, g)
    assert macs_separable == depthwise_conv_macs(m, k, g) + pointwise_conv_macs(m, n, g)
    assert Fraction(macs_separable, macs_standard) == separable_cost_ratio(n, k)


def test_batchnorm_does_not_change_the_mac_count():
    x = torch.randn(1, 16, 9, 9)
    assert count_macs(SeparableConv2d(16, 32, norm=True, activation=True), x).total == \
        count_macs(SeparableConv2d(16, 32, norm=False), x).total


def test_parameter_counts():
    assert count_params(SeparableConv2d(64, 128, 3, norm=False)) == 64 * 9 + 64 * 128
    assert count_params(SeparableConv2d(64, 128, 3, norm=True)) == 64 * 9 + 64 * 128 + 2 * 64 + 2 * 128


def test_equals_depthwise_then_pointwise():
    layer = SeparableConv2d(6, 10, 3, stride=2, rate=2, norm=False)
    x = torch.randn(2, 6, 17, 12)
    expected = F.conv2d(F.conv2d(x, layer.dwconv.weight, stride=2, padding=2, dilation=2, groups=6),
                        layer.pwconv.weight)
    torch.testing.assert_close(layer(x), expected)
    assert layer(x).shape == (2, 10, 9, 6)


@pytest.mark.parametrize("call,match", [
    (lambda: SeparableConv2d(8, 16)(torch.randn(1, 4, 9, 9)), "expected 8 input channels"),
    (lambda: SeparableConv2d(8, 16)(torch.randn(9, 9)), "4-D tensor"),
    (lambda: SeparableConv2d(8, 0), "positive integer"),
    (lambda: separable_cost_ratio(0, 3), "positive integer"),
    (lambda: standard_conv_macs(3, 4, 3, -1), "positive integer"),
])
def test_bad_inputs_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
