"""The DeepLabV3+ exercise checks pass the library's own components and fail stubs and classic mistakes."""
import pytest
import torch.nn.functional as F
from torch import nn

from tutorial_lib import checks
from tutorial_lib.layers.aspp import ImagePooling
from tutorial_lib.layers.atrous import atrous_conv2d, receptive_field
from tutorial_lib.layers.separable import depthwise_conv_macs, pointwise_conv_macs, standard_conv_macs
from tutorial_lib.models.deeplab import Decoder


def stub(*args, **kwargs):
    raise NotImplementedError


class SeparableConv(nn.Module):
    def __init__(self, in_chans, out_chans, kernel_size=3, rate=1, bias=False):
        super().__init__()
        self.dw = nn.Conv2d(in_chans, in_chans, kernel_size, padding=rate * (kernel_size - 1) // 2, dilation=rate,
                            groups=in_chans, bias=bias)
        self.pw = nn.Conv2d(in_chans, out_chans, 1, bias=bias)

    def forward(self, x):
        return self.pw(self.dw(x))


GOOD = {
    "atrous_conv2d": lambda x, w, rate=1, padding=0: atrous_conv2d(x, w, rate=rate, padding=padding),
    "receptive_field": receptive_field,
    "separable_macs": lambda m, n, k, g: (standard_conv_macs(m, n, k, g),
                                          depthwise_conv_macs(m, k, g) + pointwise_conv_macs(m, n, g)),
    "separable_conv": SeparableConv,
    "image_pooling": ImagePooling,
    "deeplab_decoder": Decoder,
}
MISTAKES = {
    "atrous_conv2d": lambda x, w, rate=1, padding=0: F.conv2d(x, w, padding=padding, stride=rate),
    "receptive_field": lambda layers: 1 + sum(k + (k - 1) * (r - 1) - 1 for k, s, r in layers),  # ignores strides
    "separable_macs": lambda m, n, k, g: (n * g * g * k * k * m, g * g * k * k * m),  # forgets the pointwise
    "separable_conv": lambda i, o, kernel_size=3, rate=1: SeparableConv(i, o, kernel_size, rate, bias=True),
    "image_pooling": lambda i, o: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(i, o, 1), nn.BatchNorm2d(o)),
    "deeplab_decoder": lambda i, low, c48=48, ch=256: Decoder(i, low, c48, ch // 2),
}


@pytest.mark.parametrize("name", list(GOOD))
def test_check_passes_the_library_component(name):
    assert checks.run_check(name, GOOD[name], verbose=False) is None


@pytest.mark.parametrize("name", list(GOOD))
def test_check_fails_a_stub(name):
    report = checks.run_check(name, stub, verbose=False)
    assert report is not None and "NotImplementedError" in report


@pytest.mark.parametrize("name", list(MISTAKES))
def test_check_fails_a_classic_mistake(name):
    assert checks.run_check(name, MISTAKES[name], verbose=False) is not None
