"""SegFormer's overlapping patch embedding (chapter 08).

A strided convolution whose kernel is larger than its stride (K=7, S=4, P=3 for
stage 1 and K=3, S=2, P=1 for stages 2-4), followed by a LayerNorm over channels.
Neighbouring patches share pixels, so the tokens keep the local continuity that
ViT's non-overlapping patches cut.
"""

from __future__ import annotations

from typing import Tuple

import torch
from torch import nn

from .._validate import check_image_batch, check_positive

__all__ = ["OverlapPatchEmbed", "overlap_output_size"]


def overlap_output_size(size: int, patch_size: int, stride: int) -> int:
    r"""Output length of an overlapping patch embedding along one axis.

    With padding :math:`P = \lfloor K/2 \rfloor` (the official code's
    ``patch_size // 2``):

    .. math:: H_\text{out} = \left\lfloor \frac{H + 2\lfloor K/2\rfloor - K}{S} \right\rfloor + 1

    For odd ``K`` this is :math:`\lceil H / S \rceil`.
    """
    check_positive(size, "overlap_output_size size")
    check_positive(patch_size, "overlap_output_size patch_size")
    check_positive(stride, "overlap_output_size stride")
    return (size + 2 * (patch_size // 2) - patch_size) // stride + 1


class OverlapPatchEmbed(nn.Module):
    r"""Overlapping patch embedding of SegFormer (Xie et al., 2021, §3.1 "Overlapped
    Patch Merging").

    A convolution with kernel ``patch_size`` (K), stride ``stride`` (S) and padding
    ``K // 2`` (with bias), then ``LayerNorm(embed_dim)`` (eps 1e-5, as the official
    code) on the tokens:

    .. math::
        z = \mathrm{LN}(\mathrm{Flatten}(\mathrm{Conv}_{K,S,\lfloor K/2\rfloor}(x)))

    Shapes: ``x: (B, C_in, H, W) -> (tokens (B, N, C), H_out, W_out)`` with
    ``N = H_out · W_out`` and ``H_out = overlap_output_size(H, K, S)``.
    """

    def __init__(
        self,
        in_chans: int = 3,
        embed_dim: int = 32,
        patch_size: int = 7,
        stride: int = 4,
    ) -> None:
        super().__init__()
        for value, name in (
            (in_chans, "in_chans"),
            (embed_dim, "embed_dim"),
            (patch_size, "patch_size"),
            (stride, "stride"),
        ):
            check_positive(value, f"OverlapPatchEmbed {name}")
        self.in_chans = in_chans
        self.embed_dim = embed_dim
        self.patch_size = patch_size
        self.stride = stride
        self.proj = nn.Conv2d(
            in_chans, embed_dim, patch_size, stride, padding=patch_size // 2
        )
        self.norm = nn.LayerNorm(embed_dim)

    def output_size(self, height: int, width: int) -> Tuple[int, int]:
        """``(H_out, W_out)`` for an input of ``height × width``."""
        return (
            overlap_output_size(height, self.patch_size, self.stride),
            overlap_output_size(width, self.patch_size, self.stride),
        )

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, int, int]:
        """``x: (B, C_in, H, W) -> (tokens (B, H_out·W_out, C), H_out, W_out)``."""
        check_image_batch(x, "OverlapPatchEmbed input", channels=self.in_chans)
        x = self.proj(x)  # (B, C, H_out, W_out)
        _, _, h, w = x.shape
        x = x.flatten(2).transpose(1, 2)  # (B, N, C)
        x = self.norm(x)  # (B, N, C)
        return x, h, w

    def extra_repr(self) -> str:
        return f"K={self.patch_size}, S={self.stride}, P={self.patch_size // 2}"
