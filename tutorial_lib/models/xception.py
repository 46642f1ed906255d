"""Modified aligned Xception, the DeepLabV3+ backbone (Chen et al., 2018, §3.2 and
Fig. 4).

Three changes to MSRA's aligned Xception: (1) deeper — 16 middle-flow units; (2)
every max pooling is replaced by a depthwise separable convolution with stride 2, so
atrous convolution can replace any striding; (3) BatchNorm follows every depthwise
and pointwise convolution. The structure follows the official code (``xception_65``
in tensorflow/models ``research/deeplab/core/xception.py``):

* stem: 3×3/32 stride 2, 3×3/64 (conv + BN + ReLU each);
* entry flow: units [128]×3, [256]×3, [728]×3, stride 2 in each unit's third
  separable conv, 1×1 convolution shortcut;
* middle flow: 16 units [728]×3 with identity shortcut;
* exit flow: [728, 1024, 1024] stride 2 with conv shortcut, then [1536, 1536, 2048]
  without shortcut.

Where ReLU sits: the paper's Fig. 4 draws BN + ReLU after each depthwise
convolution, but the code applies ReLU *before* each separable convolution
(pre-activation; the shortcut reads the input before that ReLU) in every unit except
the last, which alone has ReLU after its depthwise and pointwise convolutions
(``activation_fn_in_separable_conv=True``). This module follows the code.

Layer count: 2 (stem) + 3·3 (entry) + 16·3 (middle) + 3 + 3 (exit) = 65
convolutions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .._validate import check_choice, check_image_batch, check_positive
from ..layers.separable import SeparableConv2d

__all__ = [
    "XceptionConfig",
    "XCEPTION65",
    "XceptionBlock",
    "Xception",
    "plan_strides",
    "xception65",
]


@dataclass(frozen=True)
class XceptionConfig:
    """Widths of the aligned Xception; the defaults are Xception-65."""

    in_chans: int = 3
    stem: Tuple[int, int] = (32, 64)
    entry: Tuple[Tuple[int, int, int], ...] = (
        (128, 128, 128),
        (256, 256, 256),
        (728, 728, 728),
    )
    middle: Tuple[int, int, int] = (728, 728, 728)
    middle_units: int = 16
    exit: Tuple[Tuple[int, int, int], Tuple[int, int, int]] = (
        (728, 1024, 1024),
        (1536, 1536, 2048),
    )
    #: which entry-flow unit gives the stride-4 low-level feature (the output of its
    #: 2nd conv)
    low_level_unit: int = 1


XCEPTION65 = XceptionConfig()


def plan_strides(
    strides: Sequence[int], output_stride: int
) -> List[Tuple[int, int]]:
    """``(stride, rate)`` for each unit so that the network stops striding at
    ``output_stride``.

    DeepLab's ``stack_blocks_dense``: once the product of strides reaches
    ``output_stride``, a unit keeps stride 1 and runs at the current rate, and the
    rate of later units is multiplied by the stride that was dropped — the atrous
    rates replace the striding.
    """
    current, rate, plan = 1, 1, []
    for stride in strides:
        if current == output_stride:
            plan.append((1, rate))
            rate *= stride
        else:
            plan.append((stride, 1))
            current *= stride
    if current != output_stride:
        raise ValueError(
            f"plan_strides: output_stride {output_stride} cannot be reached with "
            "strides "
            f"{list(strides)} (it must be one of their running products)"
        )
    return plan


class XceptionBlock(nn.Module):
    """One Xception unit: three 3×3 separable convolutions and a shortcut (Fig. 4 of
    DeepLabV3+).

    ``skip``: ``"conv"`` (1×1 convolution + BN, with the unit's stride), ``"sum"``
    (identity) or ``"none"``. The stride sits in the third separable convolution;
    ``rate`` dilates all three.
    ``x: (B, C_in, H, W) -> (B, widths[-1], ceil(H/s), ceil(W/s))``.
    """

    def __init__(
        self,
        in_chans: int,
        widths: Tuple[int, int, int],
        stride: int = 1,
        rate: int = 1,
        skip: str = "conv",
        activation_inside: bool = False,
    ) -> None:
        super().__init__()
        check_choice(skip, "XceptionBlock skip", ("conv", "sum", "none"))
        if skip == "sum" and (in_chans != widths[-1] or stride != 1):
            raise ValueError(
                "XceptionBlock: an identity shortcut needs in_chans == widths[-1] "
                "and stride 1, "
                f"got {in_chans} -> {widths[-1]} with stride {stride}"
            )
        self.activation_inside, self.skip = activation_inside, skip
        chans = [in_chans, *widths]
        self.convs = nn.ModuleList(
            [
                SeparableConv2d(
                    chans[i],
                    chans[i + 1],
                    3,
                    stride=stride if i == 2 else 1,
                    rate=rate,
                    activation=activation_inside,
                )
                for i in range(3)
            ]
        )
        self.shortcut = (
            nn.Sequential(
                nn.Conv2d(in_chans, widths[-1], 1, stride=stride, bias=False),
                nn.BatchNorm2d(widths[-1]),
            )
            if skip == "conv"
            else None
        )

    def forward_features(
        self, x: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """The unit's output and the output of its second separable convolution
        (before the stride)."""
        residual, hidden = x, x
        for i, conv in enumerate(self.convs):
            if not self.activation_inside:
                # pre-activation; not in place: the shortcut needs x
                residual = F.relu(residual)
            residual = conv(residual)  # (B, C_i, H_i, W_i)
            if i == 1:
                hidden = residual
        if self.skip == "conv":
            residual = residual + self.shortcut(x)
        elif self.skip == "sum":
            residual = residual + x
        return residual, hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[0]


class Xception(nn.Module):
    """Modified aligned Xception as a dense feature extractor at output stride 8, 16
    or 32.

    ``x: (B, 3, H, W) -> (features, low_level)`` with
    ``features: (B, exit[-1][-1], ⌈H/os⌉, ⌈W/os⌉)`` and
    ``low_level: (B, C_low, ⌈H/4⌉, ⌈W/4⌉)``, where
    ``C_low = entry[low_level_unit][1]`` (256 for Xception-65).
    """

    def __init__(
        self, config: XceptionConfig = XCEPTION65, output_stride: int = 16
    ) -> None:
        super().__init__()
        check_choice(output_stride, "Xception output_stride", (8, 16, 32))
        check_positive(config.middle_units, "XceptionConfig middle_units")
        check_positive(config.in_chans, "XceptionConfig in_chans")
        if not 0 <= config.low_level_unit < len(config.entry):
            raise ValueError(
                f"XceptionConfig low_level_unit: expected an index into entry "
                f"(0..{len(config.entry) - 1}), got {config.low_level_unit}"
            )
        self.config, self.output_stride = config, output_stride
        s1, s2 = config.stem
        self.stem = nn.Sequential(
            nn.Conv2d(config.in_chans, s1, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(s1),
            nn.ReLU(inplace=True),
            nn.Conv2d(s1, s2, 3, padding=1, bias=False),
            nn.BatchNorm2d(s2),
            nn.ReLU(inplace=True),
        )
        # unit strides in order: stem, entry units, middle units, exit units
        strides = [2] + [2] * len(config.entry) + [1] * config.middle_units + [2, 1]
        plan = iter(plan_strides(strides, output_stride)[1:])
        blocks, cin = [], s2
        for widths in config.entry:
            stride, rate = next(plan)
            blocks.append(XceptionBlock(cin, widths, stride, rate, skip="conv"))
            cin = widths[-1]
        self.entry_flow = nn.ModuleList(blocks)
        middle = []
        for _ in range(config.middle_units):
            stride, rate = next(plan)
            middle.append(
                XceptionBlock(cin, config.middle, stride, rate, skip="sum")
            )
            cin = config.middle[-1]
        self.middle_flow = nn.Sequential(*middle)
        (stride1, rate1), (_, rate2) = next(plan), next(plan)
        self.exit_flow = nn.Sequential(
            XceptionBlock(cin, config.exit[0], stride1, rate1, skip="conv"),
            XceptionBlock(
                config.exit[0][-1],
                config.exit[1],
                1,
                rate2,
                skip="none",
                activation_inside=True,
            ),
        )
        self.out_channels = config.exit[1][-1]
        self.low_level_channels = config.entry[config.low_level_unit][1]

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        check_image_batch(x, "Xception input", channels=self.config.in_chans)
        x = self.stem(x)  # (B, 64, H/2, W/2)
        low_level = x
        for i, block in enumerate(self.entry_flow):
            # (B, C_i, H/2^(i+2), W/2^(i+2)) until the target stride
            x, hidden = block.forward_features(x)
            if i == self.config.low_level_unit:
                # before this unit's strided third conv
                low_level = hidden  # (B, C_low, H/4, W/4)
        x = self.middle_flow(x)  # (B, 728, H/os, W/os)
        x = self.exit_flow(x)  # (B, 2048, H/os, W/os)
        return x, low_level


def xception65(output_stride: int = 16, in_chans: int = 3) -> Xception:
    """Xception-65 as in DeepLabV3+ (no classification head)."""
    return Xception(XceptionConfig(in_chans=in_chans), output_stride=output_stride)
