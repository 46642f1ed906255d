"""Checks for the DeepLabV3+ part: atrous convolution, separable convolution and its cost, ASPP's
image-level branch, and the DeepLabV3+ decoder.

Each check compares the student's object with ``tutorial_lib``'s own component on seeded inputs
(odd sizes, several rates and kernel sizes), and names the usual mistake in its hint.
"""
from __future__ import annotations

from typing import Any, Callable, List

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.aspp import ImagePooling
from ..layers.atrous import receptive_field
from ..layers.separable import depthwise_conv_macs, pointwise_conv_macs, standard_conv_macs
from ..models.deeplab import Decoder
from . import _core
from ._core import Checker, register

__all__ = ["check_atrous_conv2d", "check_receptive_field", "check_separable_macs", "check_separable_conv",
           "check_image_pooling", "check_deeplab_decoder"]


def _gen(seed: int = 0) -> torch.Generator:
    return _core.generator(seed)


@register("atrous_conv2d", forbid=["tutorial_lib.layers.atrous.atrous_conv2d", "tutorial_lib.layers.atrous.AtrousConv2d"],
          names=["atrous_conv2d"],
          description="atrous_conv2d(x, weight, rate=1, padding=0) -> (B, C_out, H_out, W_out)")
def check_atrous_conv2d(fn: Callable[..., torch.Tensor]) -> None:
    """Check ``atrous_conv2d(x, weight, rate=1, padding=0)`` against ``F.conv2d(..., dilation=rate)``."""
    gen = _gen(1)
    cases = [(3, 1, 1), (3, 2, 2), (3, 4, 0), (5, 2, 4), (3, 6, 6), (1, 3, 0), (7, 1, 3)]
    with Checker("atrous convolution") as c:
        for k, rate, padding in cases:
            x = torch.randn(2, 3, 13, 18, generator=gen)
            w = torch.randn(4, 3, k, k, generator=gen)
            want = F.conv2d(x, w, padding=padding, dilation=rate)
            got = fn(x.clone(), w.clone(), rate=rate, padding=padding)
            c.close(got, want, f"kernel {k}×{k}, rate {rate}, padding {padding}",
                    hint="tap (i, j) reads the padded input at offset (i·rate, j·rate); the output has "
                         "H + 2·padding − rate·(k − 1) rows", atol=1e-4)


@register("receptive_field", forbid=["tutorial_lib.layers.atrous.receptive_field"],
          names=["receptive_field"],
          description="receptive_field(layers: list of (kernel_size, stride, rate)) -> int")
def check_receptive_field(fn: Callable[[List[tuple]], int]) -> None:
    """Check ``receptive_field(layers)`` (pixels along one axis) on stacks with strides and rates."""
    stacks = [[(3, 1, 1)], [(3, 1, 1)] * 3, [(3, 1, 2)] * 3, [(3, 2, 1), (3, 1, 1)], [(7, 2, 1), (3, 2, 1), (3, 1, 2)],
              [(3, 2, 1), (3, 2, 1), (3, 1, 2), (3, 1, 4)], [(1, 1, 1)], [(5, 1, 3), (3, 1, 1)]]
    with Checker("receptive field") as c:
        for layers in stacks:
            c.equal(fn(list(layers)), receptive_field(layers), f"layers {layers}",
                    hint="each layer adds (k_eff − 1) × (product of the strides before it), with "
                         "k_eff = k + (k − 1)(rate − 1)")


@register("separable_macs", forbid=["tutorial_lib.layers.separable.standard_conv_macs", "tutorial_lib.layers.separable.depthwise_conv_macs", "tutorial_lib.layers.separable.pointwise_conv_macs", "tutorial_lib.layers.separable.separable_cost_ratio"],
          names=["separable_macs"],
          description="separable_macs(in_chans, out_chans, kernel_size, size) -> (standard, separable)")
def check_separable_macs(fn: Callable[[int, int, int, int], Any]) -> None:
    """Check ``separable_macs(M, N, K, G) -> (standard, separable)`` MAC counts (exact integers)."""
    with Checker("separable convolution cost") as c:
        for m, n, k, g in [(1024, 1024, 3, 33), (32, 64, 3, 16), (16, 8, 5, 7), (3, 1, 1, 2)]:
            got = fn(m, n, k, g)
            want = (standard_conv_macs(m, n, k, g), depthwise_conv_macs(m, k, g) + pointwise_conv_macs(m, n, g))
            c.equal(tuple(int(v) for v in got), want, f"M={m}, N={n}, K={k}, G={g}",
                    hint="standard N·G²·K²·M; depthwise G²·K²·M; pointwise N·G²·M")


def _separable_weights(module: nn.Module, m: int, n: int, k: int):
    depthwise = [p for p in module.parameters() if tuple(p.shape) == (m, 1, k, k)]
    pointwise = [p for p in module.parameters() if tuple(p.shape) == (n, m, 1, 1)]
    return (depthwise[0] if depthwise else None), (pointwise[0] if pointwise else None)


@register("separable_conv", forbid=["tutorial_lib.layers.separable.SeparableConv2d"],
          names=["SeparableConv"],
          description="SeparableConv(in_chans, out_chans, kernel_size=3, rate=1): depthwise then pointwise, no bias")
def check_separable_conv(cls: Callable[..., nn.Module]) -> None:
    """Check a ``SeparableConv(in_chans, out_chans, kernel_size=3, rate=1)`` module (no bias, no norm)."""
    gen = _gen(2)
    with Checker("depthwise separable convolution") as c:
        for m, n, k, rate in [(6, 10, 3, 1), (8, 4, 3, 2), (5, 7, 5, 3)]:
            layer = cls(m, n, kernel_size=k, rate=rate)
            params = sum(p.numel() for p in layer.parameters())
            c.equal(params, m * k * k + m * n, f"parameters of SeparableConv({m}, {n}, {k})",
                    hint="depthwise: one k×k filter per input channel (groups=in_chans); pointwise: "
                         "a 1×1 convolution; no biases")
            dw, pw = _separable_weights(layer, m, n, k)
            if not c.true(dw is not None and pw is not None,
                          f"SeparableConv({m}, {n}, {k}): expected weights of shapes ({m}, 1, {k}, {k}) and "
                          f"({n}, {m}, 1, 1)"):
                continue
            x = torch.randn(2, m, 11, 14, generator=gen)
            want = F.conv2d(F.conv2d(x, dw, padding=rate * (k - 1) // 2, dilation=rate, groups=m), pw)
            c.close(layer(x), want.detach(), f"SeparableConv({m}, {n}, {k}, rate={rate}) output",
                    hint="padding rate·(k − 1)/2 keeps the size; groups=in_chans makes the first "
                         "convolution depthwise")


@register("image_pooling", forbid=["tutorial_lib.layers.aspp.ImagePooling"],
          names=["ImagePooling"],
          description="ImagePooling(in_chans, out_chans): pool, 1×1 conv + BN + ReLU, upsample to (H, W)")
def check_image_pooling(cls: Callable[..., nn.Module]) -> None:
    """Check an ASPP image-level branch ``ImagePooling(in_chans, out_chans)`` against the library's."""
    gen = _gen(3)
    with Checker("ASPP image-level features") as c:
        for cin, cout, h, w in [(8, 4, 9, 13), (16, 6, 1, 1), (5, 3, 33, 17)]:
            student, ref = cls(cin, cout), ImagePooling(cin, cout)
            convs = [mod for mod in student.modules() if isinstance(mod, nn.Conv2d)]
            norms = [mod for mod in student.modules() if isinstance(mod, nn.BatchNorm2d)]
            if not c.true(len(convs) == 1 and len(norms) == 1,
                          f"ImagePooling({cin}, {cout}): expected one nn.Conv2d and one nn.BatchNorm2d, "
                          f"found {len(convs)} and {len(norms)}"):
                continue
            c.equal(sum(p.numel() for p in student.parameters()), cin * cout + 2 * cout,
                    f"parameters of ImagePooling({cin}, {cout})", hint="a 1×1 convolution without bias, then BN")
            with torch.no_grad():
                ref.conv.weight.copy_(convs[0].weight)
                ref.norm.weight.copy_(torch.rand(cout, generator=gen) + 0.5)
                ref.norm.bias.copy_(torch.randn(cout, generator=gen))
                norms[0].weight.copy_(ref.norm.weight)
                norms[0].bias.copy_(ref.norm.bias)
            x = torch.randn(2, cin, h, w, generator=gen)
            c.close(student.eval()(x), ref.eval()(x), f"output for a (2, {cin}, {h}, {w}) input",
                    hint="global average pooling → 1×1 conv → BN → ReLU, then repeat the vector over H×W")


@register("deeplab_decoder", forbid=["tutorial_lib.models.deeplab.Decoder"],
          names=["Decoder"],
          description="Decoder(in_chans, low_level_in_chans, low_level_channels=48, channels=256); "
                      "forward(x, low_level)")
def check_deeplab_decoder(cls: Callable[..., nn.Module]) -> None:
    """Check a DeepLabV3+ ``Decoder``: shapes at odd sizes, parameter count and values vs the library's.

    Values are compared after copying the library decoder's parameters into the student's in
    registration order, so define ``proj`` (1×1 conv + BN) before ``fuse`` (two 3×3 conv + BN).
    """
    gen = _gen(4)
    with Checker("DeepLabV3+ decoder") as c:
        for cin, clow, c48, ch, enc, low in [(32, 24, 8, 16, (5, 9), (17, 33)), (64, 16, 12, 32, (3, 3), (9, 9)),
                                             (16, 8, 4, 8, (9, 4), (33, 13))]:
            student, ref = cls(cin, clow, c48, ch), Decoder(cin, clow, c48, ch)
            got_p = [tuple(p.shape) for p in student.parameters()]
            want_p = [tuple(p.shape) for p in ref.parameters()]
            c.equal(sum(p.numel() for p in student.parameters()), sum(p.numel() for p in ref.parameters()),
                    f"parameters of Decoder({cin}, {clow}, {c48}, {ch})",
                    hint="1×1 conv to low_level_channels + BN; two 3×3 convs (the first sees "
                         "in_chans + low_level_channels) + BN; no biases")
            x = torch.randn(2, cin, *enc, generator=gen)
            low_level = torch.randn(2, clow, *low, generator=gen)
            if got_p == want_p:
                with torch.no_grad():
                    for p, q in zip(student.parameters(), ref.parameters()):
                        p.copy_(q + 0.1 * torch.randn(q.shape, generator=gen))
                        q.copy_(p)
                c.close(student.eval()(x, low_level), ref.eval()(x, low_level).detach(),
                        f"output for encoder {enc} and low-level {low} maps",
                        hint="upsample x bilinearly (align_corners=False) to the low-level size and "
                             "concatenate [x, proj(low_level)] in that order", atol=1e-4)
            else:
                c.shape(student.eval()(x, low_level), (2, ch, *low), f"output for encoder {enc} and low-level {low}",
                        hint="the decoder works at the low-level feature's size")
                c.true(False, f"parameter shapes in order {got_p} differ from {want_p}",
                       hint="define proj before fuse, each convolution without bias followed by BN")
