"""SegFormer's Mix-FFN (chapter 10): an MLP with a 3×3 depthwise convolution inside.

The zero-padded depthwise convolution mixes each token with its eight neighbours
and, at the image border, sees the padding: that is enough positional information
for segmentation, so SegFormer uses no positional encoding at all.
"""

from __future__ import annotations

import torch
from torch import nn

from .._validate import check_choice, check_positive, check_token_grid

__all__ = ["MixFFN"]


class MixFFN(nn.Module):
    r"""Mix-FFN of SegFormer (Xie et al., 2021, §3.1, eq. 3), without the residual.

    .. math::
        x_\text{out} = \mathrm{MLP}\big(\mathrm{GELU}(
            \mathrm{Conv}_{3\times3}(\mathrm{MLP}(x_\text{in})))\big) + x_\text{in}

    This module computes everything but the ``+ x_in``: the transformer block adds
    the residual (after its pre-norm). ``fc1 = Linear(dim, hidden_dim)`` → depthwise
    ``Conv2d(hidden, hidden, 3, 1, 1, groups=hidden)`` with bias → GELU → dropout →
    ``fc2 = Linear(hidden_dim, dim)`` → dropout, as the official ``Mlp``. The
    official code wraps the convolution in a ``DWConv`` module (state-dict key
    ``dwconv.dwconv.weight``); here it is ``dwconv`` directly (``dwconv.weight``),
    which weight converters account for. ``padding_mode`` is the convolution's
    (``"zeros"``, the paper's; ``"circular"`` etc. for chapter 10's exercise, where
    the border no longer differs from the interior).

    Shapes: ``x: (B, N, C), H, W -> (B, N, C)`` with ``N = H · W``.
    """

    def __init__(
        self,
        dim: int,
        hidden_dim: int,
        drop: float = 0.0,
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        check_positive(dim, "MixFFN dim")
        check_positive(hidden_dim, "MixFFN hidden_dim")
        if not 0.0 <= float(drop) < 1.0:
            raise ValueError(
                f"MixFFN drop: expected a probability in [0, 1), got {drop!r}"
            )
        check_choice(
            padding_mode,
            "MixFFN padding_mode",
            ["zeros", "circular", "reflect", "replicate"],
        )
        self.dim = dim
        self.hidden_dim = hidden_dim
        self.fc1 = nn.Linear(dim, hidden_dim)
        h = hidden_dim
        self.dwconv = nn.Conv2d(h, h, 3, 1, 1, groups=h, padding_mode=padding_mode)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        """``x: (B, N, C)`` tokens of an ``H × W`` grid (row-major)
        ``-> (B, N, C)``."""
        check_token_grid(x, "MixFFN", H, W, dim=self.dim)
        x = self.fc1(x)  # (B, N, hidden)
        x = x.transpose(1, 2).unflatten(2, (H, W))  # (B, hidden, H, W)
        x = self.dwconv(x)  # (B, hidden, H, W)
        x = x.flatten(2).transpose(1, 2)  # (B, N, hidden)
        x = self.drop(self.act(x))  # (B, N, hidden)
        x = self.drop(self.fc2(x))  # (B, N, C)
        return x
