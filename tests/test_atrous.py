"""Atrous convolution: the from-scratch version equals nn.Conv2d(dilation); size formulas."""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from tutorial_lib.layers import atrous
from tutorial_lib.layers.atrous import (AtrousConv2d, atrous_conv2d, conv_output_size, effective_kernel_size,
                                        receptive_field, same_padding, sampled_offsets)


@pytest.mark.parametrize("k,rate,padding,stride", [
    (3, 1, 1, 1), (3, 2, 2, 1), (3, 4, 0, 1), (3, 6, 3, 1), (5, 2, 4, 1), (1, 3, 0, 1), (3, 2, 2, 2),
    (5, 3, 1, 2), (7, 2, 6, 1)])
def test_scratch_atrous_conv_equals_nn_conv2d(k, rate, padding, stride):
    conv = nn.Conv2d(4, 6, k, stride=stride, padding=padding, dilation=rate, bias=True)
    x = torch.randn(2, 4, 23, 30)
    got = atrous_conv2d(x, conv.weight, conv.bias, rate=rate, padding=padding, stride=stride)
    torch.testing.assert_close(got, conv(x))


def test_scratch_atrous_conv_without_bias():
    x, w = torch.randn(1, 3, 9, 9), torch.randn(5, 3, 3, 3)
    torch.testing.assert_close(atrous_conv2d(x, w, rate=3, padding=3), F.conv2d(x, w, padding=3, dilation=3))


def test_effective_kernel_size_and_offsets():
    assert [effective_kernel_size(3, r) for r in (1, 2, 6, 12)] == [3, 5, 13, 25]
    assert effective_kernel_size(5, 2) == 9
    assert sampled_offsets(3, 1) == [-1, 0, 1]
    assert sampled_offsets(3, 6) == [-6, 0, 6]
    assert sampled_offsets(5, 2) == [-4, -2, 0, 2, 4]


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 40), k=st.sampled_from([1, 3, 5, 7]), rate=st.integers(1, 6), stride=st.integers(1, 3))
def test_same_padding_keeps_size_and_output_formula(size, k, rate, stride):
    padding = same_padding(k, rate)
    out = F.conv2d(torch.zeros(1, 1, size, size), torch.zeros(1, 1, k, k), stride=stride, padding=padding,
                   dilation=rate)
    assert out.shape[-1] == conv_output_size(size, k, stride, padding, rate) == -(-size // stride)


def test_receptive_field_of_stacks():
    assert receptive_field([(3, 1, 1)] * 3) == 7  # three 3×3 layers
    assert receptive_field([(3, 1, 2)] * 3) == 13  # rate 2 spans 5 each
    assert receptive_field([(3, 2, 1), (3, 1, 1)]) == 7  # stride 2 doubles the second layer's step
    # dropping a stride and dilating the next layer by it keeps the receptive field (DeepLab's trick)
    assert receptive_field([(3, 1, 1), (3, 1, 2)]) == receptive_field([(3, 2, 1), (3, 1, 1)]) == 7
    assert receptive_field([(3, 2, 1), (3, 1, 2)]) == 11


def test_atrous_conv2d_module_keeps_size():
    conv = AtrousConv2d(8, 16, 3, rate=6)
    assert conv.rate == 6 and conv.padding == (6, 6)
    assert conv(torch.randn(2, 8, 33, 17)).shape == (2, 16, 33, 17)


@pytest.mark.parametrize("call,match", [
    (lambda: AtrousConv2d(8, 16)(torch.randn(2, 4, 9, 9)), "expected 8 input channels"),
    (lambda: AtrousConv2d(8, 16)(torch.randn(8, 9, 9)), "4-D tensor"),
    (lambda: atrous_conv2d(torch.randn(1, 3, 9, 9), torch.randn(2, 4, 3, 3)), "weight"),
    (lambda: same_padding(4, 2), "odd kernel"),
    (lambda: effective_kernel_size(3, 0), "positive integer"),
    (lambda: conv_output_size(3, 3, rate=4), "does not fit"),
    (lambda: receptive_field([(3, 1)]), "kernel_size, stride, rate"),
])
def test_bad_inputs_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_footprint_shows_gridding():
    from tutorial_lib.widgets.deeplab import atrous_footprint

    assert atrous_footprint(3, 1).tolist() == [[1] * 3] * 3
    one = atrous_footprint(3, 2)
    assert one.shape == (5, 5) and (one > 0).sum() == 9
    stacked = atrous_footprint(3, 2, layers=2)  # two rate-2 layers read only every other pixel
    assert stacked.shape == (9, 9) and (stacked[1::2, :] == 0).all() and stacked.sum() == 81
    assert (atrous_footprint(3, 1, layers=3) > 0).all()


def test_stack_offsets_show_which_rate_mixes_fill_the_field():
    # k = 3: offsets {-r, 0, r} per layer; the stack reads their sums
    assert atrous.stack_offsets(3, [2]) == [-2, 0, 2]
    full = atrous.stack_offsets(3, [1, 2, 5])
    assert full == list(range(-8, 9))  # 17 of 17: no hole
    holes = atrous.stack_offsets(3, [2, 3])  # gcd 1, yet offsets ±4 are never read
    assert -4 not in holes and 4 not in holes and len(holes) == 9
    assert holes[0] == -5 and holes[-1] == 5
    sparse = atrous.stack_offsets(3, [1, 7])  # gcd 1: 9 of the 17 offsets only
    assert len(sparse) == 9 and sparse[0] == -8 and sparse[-1] == 8
    # the span is the receptive field; the order of the rates does not matter
    for rates in ([1, 2, 5], [2, 3], [1, 7], [2, 2, 2], [4, 1]):
        offsets = atrous.stack_offsets(3, rates)
        assert offsets[-1] - offsets[0] + 1 == atrous.receptive_field(
            [(3, 1, r) for r in rates]
        )
        assert offsets == atrous.stack_offsets(3, rates[::-1])
    # the same rate repeated reads the gridding lattice of atrous_footprint
    line = atrous.atrous_footprint(3, 2, layers=3)[6]  # the middle row
    assert [i - 6 for i in range(13) if line[i]] == atrous.stack_offsets(3, [2, 2, 2])
    with pytest.raises(ValueError, match="at least one rate"):
        atrous.stack_offsets(3, [])
    with pytest.raises(ValueError):
        atrous.stack_offsets(3, [0])
