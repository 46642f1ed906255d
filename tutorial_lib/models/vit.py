"""Vision Transformer encoder (Dosovitskiy et al., ICLR 2021) with timm's module
names.

Eqs. (1)–(4) of the paper: patch embeddings plus a learnable ``[class]`` token and
learned 1-D position embeddings, then ``L`` pre-norm blocks

.. math:: z'_\\ell = \\mathrm{MSA}(\\mathrm{LN}(z_{\\ell-1})) + z_{\\ell-1},\\qquad
          z_\\ell = \\mathrm{MLP}(\\mathrm{LN}(z'_\\ell)) + z'_\\ell,

and ``y = LN(z_L^0)`` fed to a linear head. SETR uses the same encoder without the
final LayerNorm (each of its heads normalises its own input):
``ViTConfig(final_norm=False, num_classes=0)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from .._validate import check_choice, check_image_batch, check_positive
from ..layers.attention import Attention
from ..layers.patch_embed import PatchEmbed, check_patch_divisible

__all__ = [
    "ViTConfig",
    "Mlp",
    "Block",
    "VisionTransformer",
    "resize_pos_embed",
    "vit_base_patch16_224",
    "vit_large_patch16_224",
]

Size = Union[int, Tuple[int, int]]


@dataclass(frozen=True)
class ViTConfig:
    """ViT hyper-parameters (paper Table 1: Base 12/768/12 heads, Large 24/1024/16
    heads).

    ``num_classes=0`` builds no head; ``final_norm=False`` drops the last LayerNorm
    (SETR). ``dynamic_img_size=True`` interpolates the position embeddings to each
    input's grid with ``pos_interp_mode`` (otherwise an input of another size raises
    a ``ValueError``). ``global_pool="avg"`` builds no class token and classifies
    the average of the patch tokens (the paper's Appendix D.3 found it as good as
    the class token, with its own learning rate); the default ``"token"`` is the
    paper's main model.
    """

    img_size: Size = 224
    patch_size: int = 16
    in_chans: int = 3
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    norm_eps: float = 1e-6
    final_norm: bool = True
    num_classes: int = 1000
    drop_rate: float = 0.0
    dynamic_img_size: bool = False
    pos_interp_mode: str = "bicubic"
    global_pool: str = "token"


class Mlp(nn.Module):
    """The transformer's two-layer MLP with GELU (ViT §3.1):
    ``(B, N, D) -> (B, N, D)``."""

    def __init__(
        self, in_features: int, hidden_features: int, drop: float = 0.0
    ) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.act(self.fc1(x)))  # (B, N, hidden)
        return self.drop(self.fc2(x))  # (B, N, D)


class Block(nn.Module):
    """Pre-norm transformer block (ViT eqs. 2–3): ``x + MSA(LN(x))``, then
    ``x + MLP(LN(x))``.

    ``x: (B, N, D) -> (B, N, D)``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        norm_eps: float = 1e-6,
        drop: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, proj_drop=drop)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))  # (B, N, D)
        return x + self.mlp(self.norm2(x))  # (B, N, D)


def resize_pos_embed(
    pos_embed: torch.Tensor,
    old_grid: Size,
    new_grid: Size,
    num_prefix_tokens: int = 1,
    mode: str = "bilinear",
) -> torch.Tensor:
    """Interpolate learned position embeddings to a new token grid (ViT §3.2
    "fine-tuning").

    ``pos_embed: (1, T + h·w, D) -> (1, T + h'·w', D)`` for
    ``T = num_prefix_tokens`` (the class token's embedding is kept unchanged, it has
    no position). The ``h×w`` grid part is resampled as a ``D``-channel image with
    ``F.interpolate(mode, align_corners=False)``: ``"bilinear"`` as SETR's official
    loader does, ``"bicubic"`` as timm does (timm also sets ``antialias=True``,
    which only matters when shrinking). At ``new_grid == old_grid`` the result
    equals the input.
    """
    old = (old_grid, old_grid) if isinstance(old_grid, int) else tuple(old_grid)
    new = (new_grid, new_grid) if isinstance(new_grid, int) else tuple(new_grid)
    _check_resize_pos_embed(pos_embed, old, new, num_prefix_tokens, mode)
    prefix = pos_embed[:, :num_prefix_tokens]  # (1, T, D)
    grid = pos_embed[:, num_prefix_tokens:]  # (1, h·w, D)
    dim = pos_embed.shape[-1]
    grid = grid.reshape(1, old[0], old[1], dim).permute(0, 3, 1, 2)  # (1, D, h, w)
    grid = F.interpolate(grid, size=new, mode=mode)  # (1, D, h', w')
    grid = grid.permute(0, 2, 3, 1).reshape(1, new[0] * new[1], dim)  # (1, h'w', D)
    return torch.cat([prefix, grid], dim=1)  # (1, T + h'w', D)


def _check_resize_pos_embed(
    pos_embed: object,
    old: Tuple[int, ...],
    new: Tuple[int, ...],
    num_prefix_tokens: object,
    mode: str,
) -> None:
    check_choice(mode, "resize_pos_embed mode", ("bilinear", "bicubic"))
    for v in old + new:
        check_positive(v, "resize_pos_embed grid size")
    if (
        isinstance(num_prefix_tokens, bool)
        or not isinstance(num_prefix_tokens, int)
        or num_prefix_tokens < 0
    ):
        raise ValueError(
            "resize_pos_embed: expected num_prefix_tokens >= 0, got "
            f"{num_prefix_tokens!r}"
        )
    if (
        not isinstance(pos_embed, torch.Tensor)
        or pos_embed.ndim != 3
        or pos_embed.shape[0] != 1
    ):
        got = (
            tuple(pos_embed.shape)
            if isinstance(pos_embed, torch.Tensor)
            else type(pos_embed).__name__
        )
        raise ValueError(
            "resize_pos_embed: expected pos_embed of shape (1, T + h*w, D), got "
            f"{got}"
        )
    expected = num_prefix_tokens + old[0] * old[1]
    if pos_embed.shape[1] != expected:
        raise ValueError(
            f"resize_pos_embed: expected {num_prefix_tokens} + {old[0]}x{old[1]} = "
            f"{expected} "
            f"tokens for old_grid={old}, got {pos_embed.shape[1]}"
        )


class VisionTransformer(nn.Module):
    """ViT encoder with a class token, learned 1-D position embeddings and pre-norm
    blocks.

    ``x: (B, 3, H, W) -> (B, num_classes)`` (or the normalised class token
    ``(B, D)`` without a head; the average patch token with ``global_pool="avg"``). :meth:`forward_layers` returns every block's tokens
    ``(B, 1 + N, D)``, which is what SETR's heads read.
    """

    def __init__(self, config: ViTConfig = ViTConfig()) -> None:
        super().__init__()
        for name in ("patch_size", "embed_dim", "depth", "num_heads"):
            check_positive(getattr(config, name), f"ViTConfig {name}")
        check_choice(
            config.pos_interp_mode,
            "ViTConfig pos_interp_mode",
            ("bilinear", "bicubic"),
        )
        check_choice(config.global_pool, "ViTConfig global_pool", ("token", "avg"))
        if not config.mlp_ratio > 0:
            raise ValueError(
                "ViTConfig mlp_ratio: expected a positive number, got "
                f"{config.mlp_ratio!r}"
            )
        if config.num_classes < 0:
            raise ValueError(
                "ViTConfig num_classes: expected >= 0 (0 = no head), got "
                f"{config.num_classes}"
            )
        self.config = config
        d = config.embed_dim
        self.patch_embed = PatchEmbed(
            config.img_size, config.patch_size, config.in_chans, d
        )
        token = config.global_pool == "token"
        self.num_prefix_tokens = 1 if token else 0
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d)) if token else None
        self.pos_embed = nn.Parameter(
            torch.zeros(1, self.num_prefix_tokens + self.patch_embed.num_patches, d)
        )
        self.pos_drop = nn.Dropout(config.drop_rate)
        self.blocks = nn.Sequential(
            *[
                Block(
                    d,
                    config.num_heads,
                    config.mlp_ratio,
                    config.qkv_bias,
                    config.norm_eps,
                    config.drop_rate,
                )
                for _ in range(config.depth)
            ]
        )
        self.norm = (
            nn.LayerNorm(d, eps=config.norm_eps)
            if config.final_norm
            else nn.Identity()
        )
        self.head = (
            nn.Linear(d, config.num_classes)
            if config.num_classes > 0
            else nn.Identity()
        )
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def grid_for(self, x: torch.Tensor) -> Tuple[int, int]:
        """The token grid ``(H/P, W/P)`` of an input batch (validated)."""
        check_image_batch(
            x, "VisionTransformer input", channels=self.config.in_chans
        )
        p = self.config.patch_size
        check_patch_divisible(
            x.shape[-2], x.shape[-1], p, "VisionTransformer input"
        )
        return x.shape[-2] // p, x.shape[-1] // p

    def _pos_embed(
        self, tokens: torch.Tensor, grid: Tuple[int, int]
    ) -> torch.Tensor:
        pos = self.pos_embed
        if grid != self.patch_embed.grid_size:
            if not self.config.dynamic_img_size:
                size = self.patch_embed.img_size
                raise ValueError(
                    f"VisionTransformer: expected an input of {size[0]}x{size[1]} "
                    "(position "
                    f"embeddings for a {self.patch_embed.grid_size} grid), got a "
                    f"{grid} token grid; "
                    "build with dynamic_img_size=True or resize the embeddings "
                    "with resize_pos_embed"
                )
            pos = resize_pos_embed(
                pos,
                self.patch_embed.grid_size,
                grid,
                self.num_prefix_tokens,
                self.config.pos_interp_mode,
            )
        if self.cls_token is not None:
            cls = self.cls_token.expand(tokens.shape[0], -1, -1)  # (B, 1, D)
            tokens = torch.cat([cls, tokens], dim=1)  # (B, 1 + N, D)
        return self.pos_drop(tokens + pos)  # (B, T + N, D), T = 0 or 1

    def forward_layers(
        self,
        x: torch.Tensor,
        indices: Optional[Sequence[int]] = None,
        class_token: bool = True,
    ) -> List[torch.Tensor]:
        """Tokens ``(B, 1 + N, D)`` after each block (all blocks, or those in
        ``indices``, 0-based).

        ``class_token=False`` drops the class token right after the position
        embeddings are added, so the blocks see only the N patch tokens
        ``(B, N, D)`` (official SETR-MLA).
        """
        grid = self.grid_for(x)
        z = self._pos_embed(self.patch_embed(x), grid)  # (B, 1 + N, D)
        if not class_token:
            z = z[:, self.num_prefix_tokens :]  # (B, N, D)
        wanted = set(range(len(self.blocks))) if indices is None else set(indices)
        outs = []
        for i, block in enumerate(self.blocks):
            z = block(z)  # (B, 1 + N, D)
            if i in wanted:
                outs.append(z)
        return outs

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last block's tokens after the final norm: ``(B, 1 + N, D)``."""
        return self.norm(self.forward_layers(x, indices=[len(self.blocks) - 1])[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.forward_features(x)  # (B, T + N, D)
        if self.cls_token is None:
            pooled = z.mean(dim=1)  # (B, D): global average pooling
        else:
            pooled = z[:, 0]  # (B, D): the class token
        return self.head(pooled)  # (B, num_classes)


def vit_base_patch16_224(num_classes: int = 1000, **kwargs) -> VisionTransformer:
    """ViT-B/16 at 224 (timm ``vit_base_patch16_224``): 86,567,656 parameters with
    1000 classes."""
    return VisionTransformer(
        ViTConfig(
            embed_dim=768, depth=12, num_heads=12, num_classes=num_classes, **kwargs
        )
    )


def vit_large_patch16_224(num_classes: int = 1000, **kwargs) -> VisionTransformer:
    """ViT-L/16 at 224 (timm ``vit_large_patch16_224``): 304,326,632 parameters with
    1000 classes."""
    return VisionTransformer(
        ViTConfig(
            embed_dim=1024,
            depth=24,
            num_heads=16,
            num_classes=num_classes,
            **kwargs,
        )
    )
