"""Depthwise separable convolution: a per-channel k×k convolution, then a 1×1
convolution.

MobileNets (Howard et al., 2017) §3.1; DeepLabV3+ §3.1 "atrous separable
convolution". With ``M`` input channels, ``N`` output channels, a ``K×K`` kernel and
a ``G×G`` output map, the multiply-accumulates are

.. math::

   \\underbrace{N G^2 K^2 M}_{\\text{standard}} \\quad\\text{vs}\\quad
   \\underbrace{G^2 K^2 M}_{\\text{depthwise}} + \\underbrace{N G^2 M}_{\\text{pointwise}},
   \\qquad \\frac{G^2 K^2 M + N G^2 M}{N G^2 K^2 M} = \\frac{1}{N} + \\frac{1}{K^2}.

The cost functions return exact integers (and the ratio an exact
``fractions.Fraction``), so they can be compared with a MAC count of real layers
without rounding.
"""

from __future__ import annotations

from fractions import Fraction

import torch
from torch import nn

from .._validate import check_image_batch, check_positive
from .atrous import same_padding

__all__ = [
    "standard_conv_macs",
    "depthwise_conv_macs",
    "pointwise_conv_macs",
    "separable_cost_ratio",
    "SeparableConv2d",
]


def _check_positive(**values: int) -> None:
    # named check_*: show_source elides its calls like the other input checks
    for name, value in values.items():
        check_positive(value, name)


def standard_conv_macs(
    in_chans: int, out_chans: int, kernel_size: int, size: int
) -> int:
    """MACs of a standard K×K convolution, M → N channels, on a G×G output:
    ``N·G²·K²·M``."""
    _check_positive(
        in_chans=in_chans, out_chans=out_chans, kernel_size=kernel_size, size=size
    )
    return out_chans * size**2 * kernel_size**2 * in_chans


def depthwise_conv_macs(in_chans: int, kernel_size: int, size: int) -> int:
    """MACs of a depthwise K×K convolution (one filter per channel) on a G×G output:
    ``G²·K²·M``."""
    _check_positive(in_chans=in_chans, kernel_size=kernel_size, size=size)
    return size**2 * kernel_size**2 * in_chans


def pointwise_conv_macs(in_chans: int, out_chans: int, size: int) -> int:
    """MACs of a 1×1 convolution, M → N channels, on a G×G map: ``N·G²·M``."""
    _check_positive(in_chans=in_chans, out_chans=out_chans, size=size)
    return out_chans * size**2 * in_chans


def separable_cost_ratio(out_chans: int, kernel_size: int):  # -> fractions.Fraction
    """Cost of depthwise separable over standard convolution as an exact
    ``Fraction``: ``1/N + 1/K²``."""
    _check_positive(out_chans=out_chans, kernel_size=kernel_size)
    return Fraction(1, out_chans) + Fraction(1, kernel_size**2)


class SeparableConv2d(nn.Module):
    """Depthwise K×K convolution (``groups = in_chans``, dilation ``rate``) followed
    by a 1×1 convolution.

    As in DeepLab's code, each of the two convolutions is followed by BatchNorm
    (``norm=True``) and, with ``activation=True``, by ReLU; there are no biases.
    With ``norm=False`` it is the bare two-convolution factorisation whose cost the
    module docstring gives. ``x: (B, M, H, W) -> (B, N, ceil(H/s), ceil(W/s))``.
    """

    def __init__(
        self,
        in_chans: int,
        out_chans: int,
        kernel_size: int = 3,
        stride: int = 1,
        rate: int = 1,
        norm: bool = True,
        activation: bool = False,
    ) -> None:
        super().__init__()
        _check_positive(
            in_chans=in_chans,
            out_chans=out_chans,
            kernel_size=kernel_size,
            stride=stride,
            rate=rate,
        )
        self.in_chans, self.out_chans = in_chans, out_chans
        self.dwconv = nn.Conv2d(
            in_chans,
            in_chans,
            kernel_size,
            stride=stride,
            padding=same_padding(kernel_size, rate),
            dilation=rate,
            groups=in_chans,
            bias=False,
        )
        self.dw_norm = nn.BatchNorm2d(in_chans) if norm else nn.Identity()
        self.dw_act = nn.ReLU(inplace=True) if activation else nn.Identity()
        self.pwconv = nn.Conv2d(in_chans, out_chans, 1, bias=False)
        self.pw_norm = nn.BatchNorm2d(out_chans) if norm else nn.Identity()
        self.pw_act = nn.ReLU(inplace=True) if activation else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, "SeparableConv2d input", channels=self.in_chans)
        # depthwise: one K×K filter per channel
        x = self.dw_act(self.dw_norm(self.dwconv(x)))  # (B, M, H', W')
        # pointwise: a 1×1 convolution mixes the channels
        return self.pw_act(self.pw_norm(self.pwconv(x)))  # (B, N, H', W')
