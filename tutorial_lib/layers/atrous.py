"""Atrous (dilated) convolution: a k×k kernel whose taps are spread ``rate`` pixels
apart.

DeepLabv3 (Chen et al., 2017) §3.1 and DeepLabV3+ §3.1 write it, for a 2-D input
``x``, weights ``w`` and rate ``r``, as

.. math:: y[i] = \\sum_{k} x[i + r \\cdot k]\\, w[k]

so ``r = 1`` is the ordinary convolution. The kernel keeps k×k weights but covers
``k + (k - 1)(r - 1)`` pixels; with padding ``r(k - 1)/2`` (odd ``k``) a stride-1
atrous convolution keeps the spatial size. The helpers below give these sizes, the
sampled offsets and the receptive field of a stack of layers; :func:`atrous_conv2d`
is a from-scratch implementation (sum over taps of shifted inputs) that equals
``torch.nn.functional.conv2d(..., dilation=r)``.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from .._validate import check_image_batch, check_positive

__all__ = [
    "effective_kernel_size",
    "same_padding",
    "conv_output_size",
    "sampled_offsets",
    "receptive_field",
    "atrous_footprint",
    "stack_offsets",
    "atrous_conv2d",
    "AtrousConv2d",
]


def effective_kernel_size(kernel_size: int, rate: int) -> int:
    """Span in pixels of a ``kernel_size`` kernel with dilation ``rate``:
    ``k + (k-1)(r-1)``."""
    check_positive(kernel_size, "effective_kernel_size kernel_size")
    check_positive(rate, "effective_kernel_size rate")
    return kernel_size + (kernel_size - 1) * (rate - 1)


def same_padding(kernel_size: int, rate: int = 1) -> int:
    """Padding ``r(k-1)/2`` that keeps the size of a stride-1 atrous convolution
    (odd ``k``)."""
    check_positive(kernel_size, "same_padding kernel_size")
    check_positive(rate, "same_padding rate")
    if kernel_size % 2 == 0:
        raise ValueError(
            "same_padding: expected an odd kernel size (symmetric padding), got "
            f"{kernel_size}"
        )
    return rate * (kernel_size - 1) // 2


def conv_output_size(
    size: int, kernel_size: int, stride: int = 1, padding: int = 0, rate: int = 1
) -> int:
    """Output length of a convolution: ``floor((n + 2p - r(k-1) - 1) / s) + 1``
    (PyTorch's formula)."""
    for name, value in (
        ("size", size),
        ("kernel_size", kernel_size),
        ("stride", stride),
        ("rate", rate),
    ):
        check_positive(value, f"conv_output_size {name}")
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(
            "conv_output_size padding: expected a non-negative integer, got "
            f"{padding!r}"
        )
    span = size + 2 * padding - rate * (kernel_size - 1)
    if span < 1:
        raise ValueError(
            "conv_output_size: the kernel (span "
            f"{effective_kernel_size(kernel_size, rate)}) "
            f"does not fit in size {size} with padding {padding}"
        )
    return (span - 1) // stride + 1


def sampled_offsets(kernel_size: int, rate: int) -> List[int]:
    """Offsets (in pixels, relative to the centre) that one axis of an atrous kernel
    reads."""
    half = effective_kernel_size(kernel_size, rate) // 2
    return [rate * i - half for i in range(kernel_size)]


def receptive_field(layers: Sequence[Tuple[int, int, int]]) -> int:
    """Receptive field (pixels, one axis) of stacked ``(kernel_size, stride, rate)``
    layers.

    Each layer adds ``(k_eff - 1) · j`` pixels, where ``j`` is the product of the
    strides before it (the "jump" between neighbouring positions in input pixels).
    """
    field, jump = 1, 1
    for index, layer in enumerate(layers):
        if len(layer) != 3:
            raise ValueError(
                f"receptive_field: expected (kernel_size, stride, rate) per layer, "
                f"got {layer!r} at position {index}"
            )
        k, s, r = layer
        field += (effective_kernel_size(k, r) - 1) * jump
        check_positive(s, "receptive_field stride")
        jump *= s
    return field


def atrous_footprint(kernel_size: int, rate: int, layers: int = 1) -> np.ndarray:
    """``(F, F)`` counts of paths from one output pixel back to each input pixel,
    ``F`` = receptive field.

    A zero inside the field is a pixel the stack never reads: the "gridding" of
    repeated rates.
    """
    if isinstance(layers, bool) or not isinstance(layers, int) or layers < 1:
        raise ValueError(
            f"atrous_footprint layers: expected a positive integer, got {layers!r}"
        )
    taps = np.zeros(effective_kernel_size(kernel_size, rate), dtype=np.int64)
    taps[::rate] = 1  # the k sampled offsets of one axis
    line = np.ones(1, dtype=np.int64)
    for _ in range(layers):
        line = np.convolve(line, taps)
    return np.outer(line, line)


def stack_offsets(kernel_size: int, rates: Sequence[int]) -> List[int]:
    """The offsets (pixels, one axis, relative to the output pixel) that a stack of
    stride-1 ``kernel_size`` layers at ``rates`` reads, in increasing order.

    Each layer adds one of its own offsets (:func:`sampled_offsets`) to every
    offset read so far, so the set is the sum of the layers' offset sets; its span
    is the receptive field. An offset of the span that is missing is never read (in
    2-D the read set is this set in both axes).
    """
    if len(rates) < 1:
        raise ValueError("stack_offsets: expected at least one rate, got none")
    read = {0}
    for rate in rates:
        read = {a + b for a in read for b in sampled_offsets(kernel_size, rate)}
    return sorted(read)


def atrous_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    rate: int = 1,
    padding: int = 0,
    stride: int = 1,
) -> torch.Tensor:
    """Atrous convolution written out: the sum over the k×k taps of shifted,
    weighted inputs.

    ``x: (B, C_in, H, W)``, ``weight: (C_out, C_in, k, k)`` ->
    ``(B, C_out, H_out, W_out)``; equal to
    ``F.conv2d(x, weight, bias, stride, padding, dilation=rate)``. Tap ``(i, j)``
    reads the input at offset ``(i·r, j·r)`` from the window's corner, which is all
    that "atrous" means.
    """
    check_image_batch(x, "atrous_conv2d input")
    if (
        weight.ndim != 4
        or weight.shape[1] != x.shape[1]
        or weight.shape[2] != weight.shape[3]
    ):
        raise ValueError(
            f"atrous_conv2d: expected weight (C_out, {x.shape[1]}, k, k), got "
            f"{tuple(weight.shape)}"
        )
    check_positive(rate, "atrous_conv2d rate")
    check_positive(stride, "atrous_conv2d stride")
    k = weight.shape[-1]
    h_out = conv_output_size(x.shape[-2], k, stride, padding, rate)
    w_out = conv_output_size(x.shape[-1], k, stride, padding, rate)
    x = nn.functional.pad(x, (padding,) * 4)  # (B, C_in, H + 2p, W + 2p)
    out = x.new_zeros(x.shape[0], weight.shape[0], h_out, w_out)
    for i in range(k):
        for j in range(k):
            # the input pixels that tap (i, j) sees, for all outputs at once
            rows = slice(i * rate, i * rate + stride * (h_out - 1) + 1, stride)
            cols = slice(j * rate, j * rate + stride * (w_out - 1) + 1, stride)
            patch = x[:, :, rows, cols]  # (B, C_in, H_out, W_out)
            out += torch.einsum("bchw,oc->bohw", patch, weight[:, :, i, j])
    if bias is not None:
        out += bias[None, :, None, None]
    return out


class AtrousConv2d(nn.Conv2d):
    """A k×k convolution with dilation ``rate`` and the padding ``r(k-1)/2`` that
    keeps the size.

    DeepLabv3 §3.1. ``x: (B, C_in, H, W) -> (B, C_out, ceil(H/s), ceil(W/s))``. It
    is an ``nn.Conv2d`` (same parameters, same speed); the class only fixes the
    padding and checks inputs.
    """

    def __init__(
        self,
        in_chans: int,
        out_chans: int,
        kernel_size: int = 3,
        rate: int = 1,
        stride: int = 1,
        groups: int = 1,
        bias: bool = False,
    ) -> None:
        check_positive(in_chans, "AtrousConv2d in_chans")
        check_positive(out_chans, "AtrousConv2d out_chans")
        super().__init__(
            in_chans,
            out_chans,
            kernel_size,
            stride=stride,
            padding=same_padding(kernel_size, rate),
            dilation=rate,
            groups=groups,
            bias=bias,
        )

    @property
    def rate(self) -> int:
        return self.dilation[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, "AtrousConv2d input", channels=self.in_channels)
        return super().forward(x)  # (B, C_out, H', W')
