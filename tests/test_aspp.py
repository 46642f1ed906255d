"""ASPP: rates per output stride, branch structure, shapes, separable form, bad inputs."""
import pytest
import torch
from torch import nn

from tutorial_lib.layers.aspp import ASPP, ASPP_RATES, ImagePooling, aspp_rates
from tutorial_lib.layers.separable import SeparableConv2d
from tutorial_lib.profiling import count_params


def test_rates_per_output_stride():
    assert aspp_rates(16) == (6, 12, 18)
    assert aspp_rates(8) == (12, 24, 36)
    assert all(r8 == 2 * r16 for r8, r16 in zip(ASPP_RATES[8], ASPP_RATES[16]))  # "doubled when OS = 8"


@pytest.mark.parametrize("os", [4, 32, 12, "16"])
def test_bad_output_stride_raises(os):
    with pytest.raises(ValueError, match="output_stride"):
        aspp_rates(os)


def test_branches_use_the_rates_and_keep_the_size():
    aspp = ASPP(64, 32, rates=(6, 12, 18)).eval()
    dilations = [b[0].dilation[0] for b in aspp.branches]
    kernels = [b[0].kernel_size[0] for b in aspp.branches]
    assert dilations == [1, 6, 12, 18] and kernels == [1, 3, 3, 3]
    x = torch.randn(2, 64, 33, 21)
    assert aspp(x).shape == (2, 32, 33, 21)


def test_paper_sized_aspp_parameter_count():
    # 1×1 + three 3×3 branches of 256 from 2048, image pooling, 1×1 projection of 5·256 -> 256; BN, no bias
    aspp = ASPP(2048, 256, aspp_rates(16))
    convs = 2048 * 256 + 3 * 2048 * 256 * 9 + 2048 * 256 + 5 * 256 * 256
    assert count_params(aspp) == convs + 6 * 2 * 256


def test_separable_branches():
    aspp = ASPP(64, 32, rates=(2, 4, 6), separable=True)
    assert [type(b).__name__ for b in aspp.branches[1:]] == ["SeparableConv2d"] * 3
    assert [b.dwconv.dilation[0] for b in aspp.branches[1:]] == [2, 4, 6]
    assert isinstance(aspp.branches[1], SeparableConv2d) and isinstance(aspp.branches[1].dw_act, nn.ReLU)
    assert aspp.eval()(torch.randn(1, 64, 9, 7)).shape == (1, 32, 9, 7)


def test_image_pooling_is_constant_over_space():
    pool = ImagePooling(8, 4).eval()
    y = pool(torch.randn(2, 8, 5, 7))
    assert y.shape == (2, 4, 5, 7)
    torch.testing.assert_close(y, y[:, :, :1, :1].expand_as(y))


def test_without_image_pooling():
    aspp = ASPP(16, 8, rates=(1, 2, 3), image_pooling=False)
    assert aspp.pool is None and aspp.proj[0].in_channels == 4 * 8


@pytest.mark.parametrize("x,match", [(torch.randn(1, 32, 9, 9), "expected 64 input channels"),
                                     (torch.randn(64, 9, 9), "4-D tensor")])
def test_bad_inputs_raise_value_error(x, match):
    with pytest.raises(ValueError, match=match):
        ASPP(64, 32)(x)


def test_one_by_one_convolutions_are_plain_conv2d_in_shape_traces() -> None:
    """Issue 14: the 1×1 branch and projection have no rate; shape_trace must not call them atrous."""
    from torch import nn

    from tutorial_lib.layers.aspp import ASPP, conv_bn_relu
    from tutorial_lib.layers.atrous import AtrousConv2d
    from tutorial_lib.profiling import shape_trace

    aspp = ASPP(16, 8, rates=(1, 2, 3))
    assert type(aspp.proj[0]) is nn.Conv2d and type(aspp.branches[0][0]) is nn.Conv2d
    assert all(isinstance(b[0], AtrousConv2d) for b in aspp.branches[1:])
    rows = [line for line in str(shape_trace(aspp.eval(), torch.randn(1, 16, 9, 9), depth=2)).splitlines()
            if line.startswith("proj.0")]
    assert rows and "Conv2d" in rows[0] and "AtrousConv2d" not in rows[0]
    with pytest.raises(ValueError, match="rate 1 for a 1×1"):
        conv_bn_relu(4, 4, 1, rate=2)
