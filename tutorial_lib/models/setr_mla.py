"""SETR's multi-level aggregation (MLA) decoder (Zheng et al., CVPR 2021, §3.3),
following the official code (fudan-zvg/SETR, ``vit_mla.py``, ``vit_mla_head.py``,
``vit_mla_auxi_head.py``).

LN on layers 6, 12, 18, 24 → 1×1 conv (D→256) → top-down cumulative sums → 3×3
conv (the *neck*, :class:`MLANeck`, part of the official backbone ``VIT_MLA``); then
per stream two 3×3 conv (256→128→128) and a 4× upsampling, concatenation, a **3×3**
classifier (512→K) and bilinear to the image (:class:`MLAHead`). The paper's text
says "channels halved" and does not mention the 3×3 classifier; the code (followed
here) goes 1024→256→128.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
from torch import nn

from .setr_config import SETRConfig
from .setr_heads import _conv_bn_relu, _Head, _up, tokens_to_map

__all__ = ["MLANeck", "MLAHead", "MLAAuxHead"]


class MLANeck(nn.Module):
    """The multi-level aggregation that the official code puts in its backbone
    (``VIT_MLA``).

    Four token maps (shallow → deep) ``(B, N, D)`` → per stream LN (``norm[i]``,
    official ``norm_0..3``) and 1×1 conv D→256 without bias + BN + ReLU
    (``proj[i]``, official ``mla_p*_1x1``); top-down cumulative sums from the
    deepest stream; a 3×3 conv 256→256 + BN + ReLU per stream (``smooth[i]``,
    official ``mla_p*``). Returns four ``(B, 256, h, w)`` maps.
    """

    def __init__(self, config: SETRConfig) -> None:
        super().__init__()
        d, c = config.embed_dim, config.mla_channels
        self.norm = nn.ModuleList(
            [nn.LayerNorm(d, eps=config.norm_eps) for _ in range(4)]
        )
        self.proj = nn.ModuleList(
            [nn.Sequential(*_conv_bn_relu(d, c, 1, bias=False)) for _ in range(4)]
        )
        self.smooth = nn.ModuleList(
            [nn.Sequential(*_conv_bn_relu(c, c, 3, bias=False)) for _ in range(4)]
        )

    def forward(
        self, features: Sequence[torch.Tensor], grid: Tuple[int, int]
    ) -> List[torch.Tensor]:
        if len(features) != 4:
            raise ValueError(
                "MLANeck: expected 4 token maps (shallow to deep), got "
                f"{len(features)}"
            )
        lateral = [
            proj(tokens_to_map(norm(x), grid))
            for x, norm, proj in zip(features, self.norm, self.proj)
        ]
        # top-down, deepest stream first: p24, p24+p18, p24+p18+p12, ...
        summed = [lateral[3]]
        for lat in reversed(lateral[:3]):
            summed.append(summed[-1] + lat)  # (B, 256, h, w)
        summed = summed[::-1]  # back to shallow -> deep
        # a 3×3 conv per stream: 4 × (B, 256, h, w)
        return [smooth(s) for s, smooth in zip(summed, self.smooth)]


class MLAHead(_Head):
    """SETR-MLA head (official ``VIT_MLAHead``): four ``(B, 256, h, w)`` maps →
    ``(B, K, 4h, 4w)``.

    Per stream ``head2..head5``: 3×3 conv 256→128 + BN + ReLU, 3×3 conv 128→128 + BN
    + ReLU (no bias), bilinear ↑4 with ``align_corners=True``; concatenation (4·128
    channels) and a 3×3 classifier ``cls`` (→K).
    """

    def __init__(self, config: SETRConfig) -> None:
        super().__init__()
        c, m = config.mla_channels, config.mlahead_channels
        for i in range(2, 6):
            setattr(
                self,
                f"head{i}",
                nn.Sequential(
                    *_conv_bn_relu(c, m, 3, bias=False),
                    *_conv_bn_relu(m, m, 3, bias=False),
                ),
            )
        self.cls = nn.Conv2d(4 * m, config.num_classes, 3, padding=1)
        self._add_conv_seg(config)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(features) != 4:
            raise ValueError(
                f"MLAHead: expected 4 feature maps, got {len(features)}"
            )
        streams = []
        for i, f in enumerate(features):
            x = getattr(self, f"head{i + 2}")(f)  # (B, 128, h, w)
            streams.append(_up(x, 4, align_corners=True))  # (B, 128, 4h, 4w)
        return self.cls(torch.cat(streams, dim=1))  # (B, K, 4h, 4w)


class MLAAuxHead(_Head):
    """SETR-MLA auxiliary head (official ``VIT_MLA_AUXIHead``): 1×1 conv 256→K, no
    bias."""

    def __init__(self, config: SETRConfig) -> None:
        super().__init__()
        self.aux = nn.Conv2d(config.mla_channels, config.num_classes, 1, bias=False)
        self._add_conv_seg(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.aux(x)  # (B, K, h, w)
