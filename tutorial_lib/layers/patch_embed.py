"""ViT's patch embedding: an image as a sequence of non-overlapping P×P patches.

Dosovitskiy et al. (2021), §3.1, eq. (1): the image :math:`x \\in
\\mathbb{R}^{H\\times W\\times C}` is reshaped into :math:`N = HW/P^2` flattened
patches :math:`x_p \\in \\mathbb{R}^{N\\times(P^2 C)}`, each mapped to :math:`D`
dimensions by a trainable linear projection :math:`\\mathbf{E}`:

.. math:: z_0 = [x_\\text{class};\\, x_p^1\\mathbf{E};\\, \\dots;\\, x_p^N\\mathbf{E}] + \\mathbf{E}_{pos}

A linear map applied to every non-overlapping patch *is* a convolution with kernel =
stride = P, which is how ViT, SETR and timm implement it (``PatchEmbed.proj``).
Patches are flattened in ``(C, P, P)`` order, the order of ``F.unfold`` and of a
``Conv2d`` weight, so the weight mapping between the two forms is a plain reshape.
"""

from __future__ import annotations

from typing import Tuple, Union

import torch
from torch import nn

from .._validate import check_image_batch, check_positive

__all__ = ["patchify", "unpatchify", "check_patch_divisible", "PatchEmbed"]

Size = Union[int, Tuple[int, int]]


def _pair(value: Size, name: str) -> Tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2:
        raise ValueError(f"{name}: expected an int or a pair (H, W), got {value!r}")
    for v in pair:
        check_positive(v, name)
    return pair  # type: ignore[return-value]


def check_patch_divisible(
    height: int, width: int, patch_size: int, name: str
) -> None:
    """Raise a ``ValueError`` unless ``height`` and ``width`` are multiples of
    ``patch_size``.

    ViT cuts the image into whole patches; it neither pads nor crops (SETR's
    official code asserts the size instead). Resize or pad the input yourself if it
    is not divisible.
    """
    if height % patch_size or width % patch_size:
        p = patch_size
        down = f"{height // p * p}x{width // p * p}"
        up = f"{-(-height // p) * p}x{-(-width // p) * p}"
        raise ValueError(
            f"{name}: expected height and width divisible by the patch size "
            f"{patch_size}, got {height}x{width} (nearest valid sizes: {down} or "
            f"{up}); resize or pad the image first"
        )


def patchify(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Cut images into flattened non-overlapping patches by reshaping.

    ``x: (B, C, H, W) -> (B, N, C·P·P)`` with ``N = (H/P)(W/P)`` patches in raster
    order (row by row); each patch is flattened in ``(C, P, P)`` order, exactly as
    ``F.unfold(x, P, stride=P).transpose(1, 2)``.
    """
    check_positive(patch_size, "patchify patch_size")
    check_image_batch(x, "patchify input")
    b, c, h, w = x.shape
    check_patch_divisible(h, w, patch_size, "patchify input")
    p = patch_size
    x = x.reshape(b, c, h // p, p, w // p, p)  # (B, C, h, P, w, P)
    x = x.permute(0, 2, 4, 1, 3, 5)  # (B, h, w, C, P, P)
    return x.reshape(b, (h // p) * (w // p), c * p * p)  # (B, N, C·P·P)


def unpatchify(
    patches: torch.Tensor, grid_size: Size, patch_size: int
) -> torch.Tensor:
    """Inverse of :func:`patchify`: ``(B, N, C·P·P) -> (B, C, h·P, w·P)`` for
    ``grid_size = (h, w)``."""
    check_positive(patch_size, "unpatchify patch_size")
    gh, gw = _pair(grid_size, "unpatchify grid_size")
    if not isinstance(patches, torch.Tensor) or patches.ndim != 3:
        got = (
            tuple(patches.shape)
            if isinstance(patches, torch.Tensor)
            else type(patches).__name__
        )
        raise ValueError(
            f"unpatchify: expected patches of shape (B, N, C·P·P), got {got}"
        )
    b, n, d = patches.shape
    p = patch_size
    if n != gh * gw or d % (p * p):
        raise ValueError(
            f"unpatchify: expected N={gh * gw} patches of length C·{p * p}, "
            f"got N={n} of length {d}"
        )
    c = d // (p * p)
    x = patches.reshape(b, gh, gw, c, p, p)  # (B, h, w, C, P, P)
    x = x.permute(0, 3, 1, 4, 2, 5)  # (B, C, h, P, w, P)
    return x.reshape(b, c, gh * p, gw * p)  # (B, C, H, W)


class PatchEmbed(nn.Module):
    """ViT's patch embedding (Dosovitskiy et al. 2021, §3.1, eq. 1): ``x_p E`` for
    every patch.

    ``proj`` is ``Conv2d(in_chans, embed_dim, kernel_size=P, stride=P)``, equivalent
    to a linear layer on :func:`patchify`'s output with weight
    ``proj.weight.reshape(D, -1)``.

    ``x: (B, C, H, W) -> (B, N, D)`` with ``N = HW/P²``; H and W must be multiples
    of P (``ValueError`` otherwise). ``img_size`` fixes ``grid_size`` and
    ``num_patches``, which the model's position embedding is built for; other
    divisible sizes still embed.
    """

    def __init__(
        self,
        img_size: Size = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        embed_dim: int = 768,
    ) -> None:
        super().__init__()
        check_positive(patch_size, "PatchEmbed patch_size")
        check_positive(in_chans, "PatchEmbed in_chans")
        check_positive(embed_dim, "PatchEmbed embed_dim")
        self.img_size = _pair(img_size, "PatchEmbed img_size")
        check_patch_divisible(*self.img_size, patch_size, "PatchEmbed img_size")
        self.patch_size = patch_size
        self.in_chans = in_chans
        self.grid_size = (
            self.img_size[0] // patch_size,
            self.img_size[1] // patch_size,
        )
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = nn.Conv2d(
            in_chans, embed_dim, kernel_size=patch_size, stride=patch_size
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, "PatchEmbed input", channels=self.in_chans)
        check_patch_divisible(
            x.shape[-2], x.shape[-1], self.patch_size, "PatchEmbed input"
        )
        x = self.proj(x)  # (B, D, H/P, W/P)
        return x.flatten(2).transpose(1, 2)  # (B, N, D)
