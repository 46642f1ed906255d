"""SETR's Naive and PUP decoders and their auxiliary heads (Zheng et al., CVPR 2021,
§3.3), following the official code (fudan-zvg/SETR, ``vit_up_head.py``).

* **Naive**: LN → 1×1 conv (D→256) → BN → ReLU → 1×1 conv (→K); SETR then
  upsamples bilinearly to the image.
* **PUP** (progressive upsampling): LN → four 3×3 conv–BN–ReLU (D→256→256→256→256)
  with a 2× bilinear upsampling after each of the first three, a 1×1 classifier and
  a last 2× (16× in all).

Like the official ``BaseDecodeHead``, every head also builds a ``conv_seg`` (1×1,
512→K) that its ``forward`` never calls; it is counted in the paper's #Params.
The MLA decoder is in :mod:`tutorial_lib.models.setr_mla`.
"""

from __future__ import annotations

import math
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .._validate import check_tokens
from .setr_config import SETRConfig

__all__ = ["tokens_to_map", "NaiveHead", "PUPHead", "PUPAuxHead"]


def _conv_bn_relu(
    cin: int, cout: int, k: int, bias: bool = True
) -> List[nn.Module]:
    return [
        nn.Conv2d(cin, cout, k, padding=k // 2, bias=bias),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


def tokens_to_map(x: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
    """``(B, N, D) -> (B, D, h, w)`` for a token grid ``(h, w)`` in raster order."""
    check_tokens(x, "tokens_to_map input", length=grid[0] * grid[1])
    return x.transpose(1, 2).unflatten(2, grid)  # (B, D, h, w)


def _up(x: torch.Tensor, scale: int, align_corners: bool = False) -> torch.Tensor:
    return F.interpolate(
        x, scale_factor=scale, mode="bilinear", align_corners=align_corners
    )


class _Head(nn.Module):
    def _add_conv_seg(self, config: SETRConfig) -> None:
        # Built by the official BaseDecodeHead and never called: counted, not used.
        if config.conv_seg:
            self.conv_seg = nn.Conv2d(
                config.conv_seg_channels, config.num_classes, 1
            )


class NaiveHead(_Head):
    """SETR-Naive head (also its auxiliary head): ``(B, N, D) -> (B, K, h, w)`` at
    the token grid.

    LN → ``conv_0`` 1×1 (D→256) → ``bn_0`` → ReLU → ``conv_1`` 1×1 (→K); the
    official names are ``conv_0``, ``syncbn_fc_0``, ``conv_1``. SETR then upsamples
    bilinearly to the image.
    """

    def __init__(self, config: SETRConfig) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(config.embed_dim, eps=config.norm_eps)
        self.conv_0 = nn.Conv2d(config.embed_dim, config.head_channels, 1)
        self.bn_0 = nn.BatchNorm2d(config.head_channels)
        self.conv_1 = nn.Conv2d(config.head_channels, config.num_classes, 1)
        self._add_conv_seg(config)

    def forward(self, x: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
        x = tokens_to_map(self.norm(x), grid)  # (B, D, h, w)
        return self.conv_1(F.relu(self.bn_0(self.conv_0(x))))  # (B, K, h, w)


class PUPHead(_Head):
    """SETR-PUP head: ``(B, N, D) -> (B, K, P·h, P·w)`` by alternating conv and 2×
    upsampling.

    ``log2(P)`` upsamplings in all: one after each of the first ``log2(P) - 1``
    conv–BN–ReLU (``conv_i``/``bn_i``, official ``syncbn_fc_i``) and one after the
    1×1 classifier ``conv_4``; for P = 16 this is the official order (↑ after conv
    0, 1, 2 and after the classifier).
    """

    def __init__(self, config: SETRConfig) -> None:
        super().__init__()
        ups = math.log2(config.patch_size)
        if ups != int(ups) or not 1 <= ups <= 4:
            raise ValueError(
                "PUPHead: expected a patch size in (2, 4, 8, 16) (four convs, 2× "
                "steps), "
                f"got {config.patch_size}"
            )
        self.num_up = int(ups)
        c, d = config.head_channels, config.embed_dim
        self.norm = nn.LayerNorm(d, eps=config.norm_eps)
        for i, cin in enumerate((d, c, c, c)):
            setattr(self, f"conv_{i}", nn.Conv2d(cin, c, 3, padding=1))
            setattr(self, f"bn_{i}", nn.BatchNorm2d(c))
        self.conv_4 = nn.Conv2d(c, config.num_classes, 1)
        self._add_conv_seg(config)

    def forward(self, x: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
        x = tokens_to_map(self.norm(x), grid)  # (B, D, h, w)
        for i in range(4):
            conv, bn = getattr(self, f"conv_{i}"), getattr(self, f"bn_{i}")
            x = F.relu(bn(conv(x)))  # (B, 256, ., .)
            if i < self.num_up - 1:
                x = _up(x, 2)  # 2h, 4h, 8h
        return _up(self.conv_4(x), 2)  # (B, K, P·h, P·w)


class PUPAuxHead(_Head):
    """SETR-PUP auxiliary head: LN → 3×3 conv (D→256) → BN → ReLU → ↑4 → 1×1 conv
    (→K).

    ``(B, N, D) -> (B, K, 4h, 4w)`` (official
    ``num_conv=2, num_upsampe_layer=2, conv3x3_conv1x1=True``).
    """

    def __init__(self, config: SETRConfig) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(config.embed_dim, eps=config.norm_eps)
        self.conv_0 = nn.Conv2d(
            config.embed_dim, config.head_channels, 3, padding=1
        )
        self.bn_0 = nn.BatchNorm2d(config.head_channels)
        self.conv_1 = nn.Conv2d(config.head_channels, config.num_classes, 1)
        self._add_conv_seg(config)

    def forward(self, x: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
        x = tokens_to_map(self.norm(x), grid)  # (B, D, h, w)
        x = _up(F.relu(self.bn_0(self.conv_0(x))), 4)  # (B, 256, 4h, 4w)
        return self.conv_1(x)  # (B, K, 4h, 4w)
