"""A tiny fully-convolutional baseline (chapter 01): the simplest per-pixel
classifier.

Three strided 3×3 convolutions take the image to output stride 8, a 1×1 convolution
classifies every position, and the logits are upsampled bilinearly to the input size
— the FCN recipe (Long et al., 2015) with no skip connections, no atrous convolution
and no context module. Later chapters measure what each of those additions buys
against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._validate import check_image_batch, check_positive

__all__ = ["FCNConfig", "TinyFCN", "tiny_fcn"]


@dataclass(frozen=True)
class FCNConfig:
    """Widths of the stride-2 stages; ``num_classes`` outputs."""

    num_classes: int = 6
    in_chans: int = 3
    widths: Sequence[int] = (32, 64, 96)


def conv_bn_relu(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class TinyFCN(nn.Module):
    """Conv–BN–ReLU stages with stride 2 each, a 1×1 classifier, bilinear
    upsampling.

    ``x: (B, 3, H, W) -> logits (B, num_classes, H, W)``; output stride
    ``2 ** len(widths)``.
    """

    def __init__(self, config: FCNConfig = FCNConfig()) -> None:
        super().__init__()
        check_positive(config.num_classes, "TinyFCN num_classes")
        check_positive(config.in_chans, "TinyFCN in_chans")
        if len(config.widths) == 0:
            raise ValueError(
                "TinyFCN widths: expected at least one stage width, got an empty "
                "sequence"
            )
        for i, width in enumerate(config.widths):
            check_positive(width, f"TinyFCN widths[{i}]")
        self.config = config
        layers, cin = [], config.in_chans
        for width in config.widths:
            layers += [
                conv_bn_relu(cin, width, stride=2),
                conv_bn_relu(width, width),
            ]
            cin = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Conv2d(cin, config.num_classes, 1)

    @property
    def output_stride(self) -> int:
        return 2 ** len(self.config.widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, "TinyFCN input", channels=self.config.in_chans)
        h, w = x.shape[-2:]
        logits = self.classifier(self.features(x))  # (B, K, ~H/8, ~W/8)
        return F.interpolate(logits, size=(h, w), mode="bilinear")  # (B, K, H, W)


def tiny_fcn(num_classes: int = 6, widths: Sequence[int] = (32, 64, 96)) -> TinyFCN:
    """The chapter-01 baseline: three stride-2 stages, output stride 8."""
    return TinyFCN(FCNConfig(num_classes=num_classes, widths=tuple(widths)))
