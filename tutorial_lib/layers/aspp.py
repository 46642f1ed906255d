"""Atrous Spatial Pyramid Pooling (ASPP): parallel atrous convolutions plus
image-level features.

DeepLabv3 (Chen et al., 2017) §3.3, reused by DeepLabV3+ §3.1: "(a) one 1×1
convolution and three 3×3 convolutions with rates = (6, 12, 18) when output stride =
16 (all with 256 filters and batch normalization), and (b) the image-level features"
(global average pooling, 1×1 convolution, BN, bilinear upsampling). "The rates are
doubled when output stride = 8." The five branches are concatenated and projected by
a 1×1 convolution with 256 filters and BN. DeepLabV3+ may make the 3×3 branches
depthwise separable ("SC" in its Table 5).
"""

from __future__ import annotations

from typing import Dict, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .._validate import check_choice, check_image_batch, check_positive
from .blocks import conv_bn_relu  # (its old home: still importable from here)

__all__ = ["ASPP_RATES", "aspp_rates", "ImagePooling", "ASPP"]

#: The paper's atrous rates of the three 3×3 branches for each output stride.
ASPP_RATES: Dict[int, Tuple[int, int, int]] = {16: (6, 12, 18), 8: (12, 24, 36)}


def aspp_rates(output_stride: int) -> Tuple[int, int, int]:
    """The ASPP rates for ``output_stride``: (6, 12, 18) at 16, doubled to (12, 24,
    36) at 8."""
    check_choice(output_stride, "aspp_rates output_stride", sorted(ASPP_RATES))
    return ASPP_RATES[output_stride]


class ImagePooling(nn.Module):
    """Image-level features: global average pooling, 1×1 convolution + BN + ReLU,
    upsampling.

    ``x: (B, C, H, W) -> (B, out_chans, H, W)``, constant over space. In training
    mode BatchNorm needs a batch of more than one image here (the pooled map has a
    single position).
    """

    def __init__(self, in_chans: int, out_chans: int = 256) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv2d(in_chans, out_chans, 1, bias=False)
        self.norm = nn.BatchNorm2d(out_chans)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, "ImagePooling input", channels=self.conv.in_channels)
        h, w = x.shape[-2:]
        x = self.act(self.norm(self.conv(self.pool(x))))  # (B, out, 1, 1)
        return F.interpolate(x, size=(h, w), mode="bilinear")  # (B, out, H, W)


class ASPP(nn.Module):
    """Atrous Spatial Pyramid Pooling (DeepLabv3 §3.3) with an optional separable
    form (DeepLabV3+).

    Branches: a 1×1 convolution, one 3×3 atrous convolution per rate, and (if
    ``image_pooling``) :class:`ImagePooling`; each gives ``out_chans`` channels with
    BN and ReLU. They are concatenated, projected by a 1×1 convolution + BN + ReLU,
    and passed through dropout (DeepLab's code keeps 90%).
    ``x: (B, in_chans, H, W) -> (B, out_chans, H, W)``.
    """

    def __init__(
        self,
        in_chans: int,
        out_chans: int = 256,
        rates: Sequence[int] = (6, 12, 18),
        separable: bool = False,
        image_pooling: bool = True,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        check_positive(in_chans, "ASPP in_chans")
        check_positive(out_chans, "ASPP out_chans")
        for rate in rates:
            check_positive(rate, "ASPP rate")
        self.in_chans, self.rates = in_chans, tuple(rates)
        self.branches = nn.ModuleList(
            [conv_bn_relu(in_chans, out_chans, 1)]
            + [
                conv_bn_relu(in_chans, out_chans, 3, rate=r, separable=separable)
                for r in self.rates
            ]
        )
        self.pool = ImagePooling(in_chans, out_chans) if image_pooling else None
        n_branches = len(self.branches) + (1 if image_pooling else 0)
        self.proj = conv_bn_relu(n_branches * out_chans, out_chans, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, "ASPP input", channels=self.in_chans)
        feats = [branch(x) for branch in self.branches]  # each (B, out, H, W)
        if self.pool is not None:
            feats.append(self.pool(x))  # (B, out, H, W), the same vector everywhere
        x = torch.cat(feats, dim=1)  # (B, n_branches · out, H, W)
        return self.drop(self.proj(x))  # (B, out, H, W)
