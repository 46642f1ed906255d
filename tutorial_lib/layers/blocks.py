"""Small blocks that several layers and models share: convolution + BN + ReLU.

DeepLab's ASPP, its decoder and the book's other convolutional heads all use the
same three-module block; it lives here, on its own, so that a new layer that needs
it does not import ASPP.
"""

from __future__ import annotations

from torch import nn

from .atrous import AtrousConv2d
from .separable import SeparableConv2d

__all__ = ["conv_bn_relu"]


def conv_bn_relu(
    in_chans: int,
    out_chans: int,
    kernel_size: int = 1,
    rate: int = 1,
    separable: bool = False,
) -> nn.Module:
    """Convolution (atrous, or depthwise separable if ``separable`` and
    ``kernel_size > 1``) + BN + ReLU, without bias.

    The separable form follows DeepLab's code: BN and ReLU after the depthwise *and*
    the pointwise convolution. A 1×1 convolution has no rate: it is a plain
    ``nn.Conv2d`` (same weights).
    """
    if kernel_size == 1:
        if rate != 1:
            raise ValueError(
                "conv_bn_relu: expected rate 1 for a 1×1 convolution, got rate "
                f"{rate}"
            )
        conv: nn.Module = nn.Conv2d(in_chans, out_chans, 1, bias=False)
    elif separable:
        return SeparableConv2d(
            in_chans, out_chans, kernel_size, rate=rate, norm=True, activation=True
        )
    else:
        conv = AtrousConv2d(in_chans, out_chans, kernel_size, rate=rate)
    return nn.Sequential(conv, nn.BatchNorm2d(out_chans), nn.ReLU(inplace=True))
