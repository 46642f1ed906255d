"""DeepLabV3+: an aligned-Xception encoder with ASPP, and a light decoder (Chen et
al., 2018).

Encoder (§3.1): the backbone at output stride 16 (or 8) followed by ASPP gives the
"DeepLabv3 feature map" (256 channels). Decoder (§3.1, Tables 1–2): the encoder
output is upsampled ×4 and concatenated with the stride-4 low-level backbone feature
reduced to 48 channels by a 1×1 convolution; two 3×3 convolutions with 256 filters
refine the result, a 1×1 convolution classifies, and the logits are upsampled ×4 to
the input size. With ``separable=True`` the ASPP and decoder 3×3 convolutions are
depthwise separable ("SC" in Table 5). With ``decoder=False`` the model is
DeepLabv3: ASPP, classifier, upsampling by the output stride.

Upsampling goes to the exact size of the target map (bilinear,
``align_corners=False``), so any input size works: 513×513 at output stride 16 gives
33×33 features, 129×129 low-level features and 513×513 logits. (DeepLab's code uses
``align_corners=True``, which is why its crops are 16·k + 1 pixels.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .._validate import check_choice, check_image_batch, check_positive
from ..layers.aspp import ASPP, aspp_rates
from ..layers.blocks import conv_bn_relu
from .xception import XCEPTION65, Xception, XceptionConfig

__all__ = [
    "DeepLabConfig",
    "Decoder",
    "DeepLabV3Plus",
    "deeplabv3plus_xception65",
    "XCEPTION_SMALL",
    "deeplabv3plus_small",
]


@dataclass(frozen=True)
class DeepLabConfig:
    """Hyper-parameters of DeepLabV3+ (defaults: the paper's Xception-65 model for
    Pascal VOC)."""

    num_classes: int = 21
    output_stride: int = 16
    separable: bool = (
        False  # depthwise separable 3×3 convolutions in ASPP and decoder ("SC")
    )
    decoder: bool = True  # False: DeepLabv3 (no decoder)
    image_pooling: bool = True
    aspp_channels: int = 256
    aspp_rates: Optional[Tuple[int, ...]] = (
        None  # None: the paper's rates for output_stride
    )
    low_level_channels: int = 48
    decoder_channels: int = 256
    dropout: float = 0.1
    backbone: XceptionConfig = XCEPTION65


class Decoder(nn.Module):
    """The DeepLabV3+ decoder: fuse the upsampled encoder output with a stride-4
    backbone feature.

    ``x: (B, C_enc, h, w)``,
    ``low_level: (B, C_low, H4, W4) -> (B, channels, H4, W4)``: ``proj`` reduces
    ``low_level`` to ``low_level_channels`` (1×1 + BN + ReLU), ``x`` is upsampled
    bilinearly to ``(H4, W4)``, the two are concatenated (encoder first, as in
    DeepLab's code) and ``fuse`` applies two 3×3 convolutions (+ BN + ReLU) with
    ``channels`` filters.
    """

    def __init__(
        self,
        in_chans: int,
        low_level_in_chans: int,
        low_level_channels: int = 48,
        channels: int = 256,
        separable: bool = False,
    ) -> None:
        super().__init__()
        self.in_chans, self.low_level_in_chans = in_chans, low_level_in_chans
        self.proj = conv_bn_relu(low_level_in_chans, low_level_channels, 1)
        self.fuse = nn.Sequential(
            conv_bn_relu(
                in_chans + low_level_channels, channels, 3, separable=separable
            ),
            conv_bn_relu(channels, channels, 3, separable=separable),
        )

    def forward(self, x: torch.Tensor, low_level: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, "Decoder input", channels=self.in_chans)
        check_image_batch(
            low_level, "Decoder low-level input", channels=self.low_level_in_chans
        )
        low_level = self.proj(low_level)  # (B, 48, H4, W4)
        size = low_level.shape[-2:]
        x = F.interpolate(x, size=size, mode="bilinear")  # (B, C_enc, H4, W4)
        return self.fuse(torch.cat([x, low_level], dim=1))  # (B, channels, H4, W4)


class DeepLabV3Plus(nn.Module):
    """DeepLabV3+ (or DeepLabv3 with ``decoder=False``) on an aligned Xception
    backbone.

    ``x: (B, 3, H, W) -> logits (B, num_classes, H, W)`` for any ``H, W`` (odd sizes
    included).
    """

    def __init__(self, config: DeepLabConfig = DeepLabConfig()) -> None:
        super().__init__()
        check_positive(config.num_classes, "DeepLabConfig num_classes")
        check_choice(
            config.output_stride, "DeepLabConfig output_stride", (8, 16, 32)
        )
        if config.output_stride == 32 and config.aspp_rates is None:
            raise ValueError(
                "DeepLabConfig aspp_rates: expected explicit rates with "
                "output_stride 32 "
                "(every stride kept; the paper gives no rates for it), got None"
            )
        self.config = config
        rates = (
            config.aspp_rates
            if config.aspp_rates is not None
            else aspp_rates(config.output_stride)
        )
        self.backbone = Xception(
            config.backbone, output_stride=config.output_stride
        )
        self.aspp = ASPP(
            self.backbone.out_channels,
            config.aspp_channels,
            rates,
            separable=config.separable,
            image_pooling=config.image_pooling,
            dropout=config.dropout,
        )
        self.decoder = (
            Decoder(
                config.aspp_channels,
                self.backbone.low_level_channels,
                config.low_level_channels,
                config.decoder_channels,
                separable=config.separable,
            )
            if config.decoder
            else None
        )
        head_chans = (
            config.decoder_channels if config.decoder else config.aspp_channels
        )
        self.classifier = nn.Conv2d(head_chans, config.num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(
            x, "DeepLabV3Plus input", channels=self.config.backbone.in_chans
        )
        h, w = x.shape[-2:]
        # features: (B, 2048, H/os, W/os); low_level: (B, 256, H/4, W/4)
        features, low_level = self.backbone(x)
        x = self.aspp(features)  # (B, 256, H/os, W/os)
        if self.decoder is not None:
            x = self.decoder(x, low_level)  # (B, 256, H/4, W/4)
        # (B, K, H/4, W/4), or (B, K, H/os, W/os) without the decoder
        logits = self.classifier(x)
        return F.interpolate(logits, size=(h, w), mode="bilinear")  # (B, K, H, W)


def deeplabv3plus_xception65(
    num_classes: int = 21, output_stride: int = 16, separable: bool = False
) -> DeepLabV3Plus:
    """The paper's DeepLabV3+ with Xception-65 (54.7 M parameters; count its MACs on
    ``meta``)."""
    return DeepLabV3Plus(
        DeepLabConfig(
            num_classes=num_classes,
            output_stride=output_stride,
            separable=separable,
        )
    )


#: A slim aligned Xception for CPU training on 64×64 scenes, with the same flows and
#: units, widths cut 2- to 24-fold and one middle unit instead of 16. Even so it is
#: the slowest capstone model to train on a CPU (``train_seconds`` in
#: ``checkpoints/metrics.json``): many thin layers, few MACs each.
XCEPTION_SMALL = XceptionConfig(
    stem=(16, 16),
    entry=((16, 16, 16), (24, 24, 24), (32, 32, 32)),
    middle=(32, 32, 32),
    middle_units=1,
    exit=((32, 48, 48), (64, 64, 96)),
)


def deeplabv3plus_small(
    num_classes: int = 6,
    output_stride: int = 8,
    separable: bool = True,
    aspp_rates: Tuple[int, int, int] = (1, 2, 3),
) -> DeepLabV3Plus:
    """A small DeepLabV3+ for CPU training (chapter 05): minutes, not GPU-days.

    :data:`XCEPTION_SMALL` backbone; ASPP and decoder with 48 channels, a 16-channel
    low-level projection, separable convolutions. The ASPP rates are scaled to the
    feature map: 64×64 inputs at output stride 8 give 8×8 features, where the
    paper's (12, 24, 36) would read only padding.
    """
    config = DeepLabConfig(
        num_classes=num_classes,
        output_stride=output_stride,
        separable=separable,
        aspp_channels=48,
        aspp_rates=tuple(aspp_rates),
        low_level_channels=16,
        decoder_channels=48,
        backbone=XCEPTION_SMALL,
    )
    return DeepLabV3Plus(config)
