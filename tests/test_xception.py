"""Modified aligned Xception: structure of Xception-65, stride plan, output strides, ReLU placement."""
import pytest
import torch
from torch import nn

from tutorial_lib.layers.separable import SeparableConv2d
from tutorial_lib.models.deeplab import XCEPTION_SMALL
from tutorial_lib.models.xception import Xception, XceptionBlock, plan_strides, xception65
from tutorial_lib.profiling import count_params


@pytest.fixture(scope="module")
def x65():
    with torch.device("meta"):
        return xception65()


def test_xception65_has_65_convolution_layers(x65):
    separable = [m for m in x65.modules() if isinstance(m, SeparableConv2d)]
    stem = [m for m in x65.stem if isinstance(m, nn.Conv2d)]
    assert len(stem) + len(separable) == 65
    assert len(x65.entry_flow) == 3 and len(x65.middle_flow) == 16 and len(x65.exit_flow) == 2


def test_xception65_parameter_count(x65):
    # analytic: every separable conv is k²·C_in + C_in·C_out weights and 2·(C_in + C_out) BN parameters
    assert count_params(x65) == 37_867_312


@pytest.mark.parametrize("os,expected", [
    (16, [(2, 1), (2, 1), (2, 1), (2, 1)] + [(1, 1)] * 16 + [(1, 1), (1, 2)]),
    (8, [(2, 1), (2, 1), (2, 1), (1, 1)] + [(1, 2)] * 16 + [(1, 2), (1, 4)]),
    (32, [(2, 1)] * 4 + [(1, 1)] * 16 + [(2, 1), (1, 1)]),
])
def test_stride_plan_replaces_strides_by_rates(os, expected):
    assert plan_strides([2, 2, 2, 2] + [1] * 16 + [2, 1], os) == expected


def test_rates_in_the_built_model():
    with torch.device("meta"):
        model = xception65(output_stride=8)
    assert model.entry_flow[2].convs[2].dwconv.stride == (1, 1)
    assert model.middle_flow[0].convs[0].dwconv.dilation == (2, 2)
    assert model.exit_flow[1].convs[0].dwconv.dilation == (4, 4)


def test_relu_placement_follows_the_code():
    inner = XceptionBlock(8, (8, 8, 8), skip="sum")
    last = XceptionBlock(8, (8, 8, 16), skip="none", activation_inside=True)
    assert all(isinstance(c.dw_act, nn.Identity) for c in inner.convs)  # pre-activation instead
    assert all(isinstance(c.dw_act, nn.ReLU) and isinstance(c.pw_act, nn.ReLU) for c in last.convs)
    x = torch.randn(1, 8, 5, 5)
    assert (last(x) >= 0).all() and (inner(x) < 0).any()


def test_shortcut_reads_the_input_before_relu():
    block = XceptionBlock(4, (4, 4, 4), skip="sum").eval()
    for conv in block.convs:  # make the residual branch zero: the output must equal the raw input
        nn.init.zeros_(conv.pwconv.weight)
    x = torch.randn(1, 4, 6, 6)
    torch.testing.assert_close(block(x), x)


@pytest.mark.parametrize("os", [8, 16, 32])
def test_feature_shapes_at_odd_size(os):
    model = Xception(XCEPTION_SMALL, output_stride=os).eval()
    features, low = model(torch.randn(1, 3, 97, 131))
    size = lambda n, s: -(-n // s)  # noqa: E731
    assert features.shape == (1, 96, size(97, os), size(131, os))
    assert low.shape == (1, 24, size(97, 4), size(131, 4))


def test_xception65_real_forward_odd_size():
    model = xception65(output_stride=16).eval()
    with torch.no_grad():
        features, low = model(torch.randn(1, 3, 65, 47))
    assert features.shape == (1, 2048, 5, 3) and low.shape == (1, 256, 17, 12)


@pytest.mark.parametrize("call,match", [
    (lambda: xception65(output_stride=4), "output_stride"),
    (lambda: plan_strides([2, 2], 8), "cannot be reached"),
    (lambda: XceptionBlock(8, (8, 8, 16), skip="sum"), "identity shortcut"),
    (lambda: XceptionBlock(8, (8, 8, 8), skip="dense"), "skip"),
    (lambda: Xception(XCEPTION_SMALL)(torch.randn(1, 1, 32, 32)), "expected 3 input channels"),
    (lambda: Xception(XCEPTION_SMALL)(torch.randn(3, 32, 32)), "4-D tensor"),
])
def test_bad_inputs_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
