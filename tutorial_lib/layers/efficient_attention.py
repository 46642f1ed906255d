"""SegFormer's efficient self-attention with sequence reduction (chapter 09).

Queries come from all ``N = H·W`` tokens; keys and values from a sequence shortened
``R``-fold, so the attention matrix is ``N × N/R`` instead of ``N × N``. The paper
writes the reduction as a reshape plus a linear layer (eq. 2,
:class:`~tutorial_lib.layers.sequence_reduction.SequenceReductionLiteral`); the official code uses a convolution with kernel
= stride = ``sr_ratio`` followed by LayerNorm, which is the same operator when the
reshape groups ``sr × sr`` neighbourhoods and ``R = sr²`` (the literal form and the
weight maps are in :mod:`tutorial_lib.layers.sequence_reduction`).
"""

from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .._validate import check_positive, check_token_grid

__all__ = ["EfficientSelfAttention", "efficient_attention_macs"]


class EfficientSelfAttention(nn.Module):
    r"""Efficient self-attention of SegFormer (Xie et al., 2021, §3.1, eqs. 1-2).

    .. math::
        \mathrm{Attention}(Q, K, V)
        = \mathrm{Softmax}\Big(\frac{QK^\top}{\sqrt{d_\text{head}}}\Big)V,

        K, V \in \mathbb{R}^{\frac{N}{R} \times C},\ R = \text{sr\_ratio}^2

    ``q = Linear(C, C)`` on all tokens; if ``sr_ratio > 1`` the tokens are reshaped
    to the ``H × W`` grid, reduced by
    ``sr = Conv2d(C, C, sr_ratio, stride=sr_ratio)`` and normalised by
    ``norm = LayerNorm(C)`` (eps 1e-5, as the official code); ``kv = Linear(C, 2C)``
    gives keys and values from the reduced tokens; ``proj = Linear(C, C)`` mixes the
    heads. ``forward`` computes with ``scaled_dot_product_attention``;
    :meth:`explicit` and :meth:`attention_map` form ``softmax(QKᵀ/√d)`` explicitly.

    Shapes: ``x: (B, N, C), H, W -> (B, N, C)`` with ``N = H · W``; keys and values
    have ``N_r = ⌊H/sr⌋·⌊W/sr⌋`` tokens (the strided convolution drops a remainder
    row or column).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 1,
        sr_ratio: int = 1,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        check_positive(dim, "EfficientSelfAttention dim")
        check_positive(num_heads, "EfficientSelfAttention num_heads")
        check_positive(sr_ratio, "EfficientSelfAttention sr_ratio (must be >= 1)")
        if dim % num_heads != 0:
            raise ValueError(
                f"EfficientSelfAttention: expected dim divisible by num_heads, got "
                f"dim={dim}, num_heads={num_heads}"
            )
        for p, name in ((attn_drop, "attn_drop"), (proj_drop, "proj_drop")):
            if not 0.0 <= float(p) < 1.0:
                raise ValueError(
                    f"EfficientSelfAttention {name}: expected a probability in [0, "
                    f"1), got {p!r}"
                )
        self.dim = dim
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.sr_ratio = sr_ratio
        self.attn_drop = float(attn_drop)
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(dim)

    def reduce(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        """The sequence reduction: ``(B, N, C) -> (B, N_r, C)`` (identity when
        ``sr_ratio == 1``)."""
        if self.sr_ratio == 1:
            return x
        if H < self.sr_ratio or W < self.sr_ratio:
            raise ValueError(
                "EfficientSelfAttention: expected H and W >= "
                f"sr_ratio={self.sr_ratio}, "
                f"got H={H}, W={W}"
            )
        b, _, c = x.shape
        x = x.transpose(1, 2).reshape(b, c, H, W)  # (B, C, H, W)
        x = self.sr(x).flatten(2).transpose(1, 2)  # (B, N_r, C)
        return self.norm(x)  # (B, N_r, C)

    def _heads(
        self, x: torch.Tensor, H: int, W: int
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        check_token_grid(x, "EfficientSelfAttention", H, W, dim=self.dim)
        b, n, c = x.shape
        h, d = self.num_heads, self.head_dim
        q = self.q(x).reshape(b, n, h, d).transpose(1, 2)  # (B, h, N, d)
        kv = self.kv(self.reduce(x, H, W))  # (B, N_r, 2C)
        kv = kv.reshape(b, -1, 2, h, d).permute(2, 0, 3, 1, 4)  # (2, B, h, N_r, d)
        return q, kv[0], kv[1]

    def _merge(self, out: torch.Tensor) -> torch.Tensor:
        b, _, n, _ = out.shape
        out = out.transpose(1, 2).reshape(b, n, self.dim)  # (B, N, C)
        return self.proj_drop(self.proj(out))  # (B, N, C)

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        """``x: (B, N, C)`` tokens of an ``H × W`` grid ``-> (B, N, C)``, computed
        with SDPA."""
        q, k, v = self._heads(x, H, W)
        drop = self.attn_drop if self.training else 0.0
        # softmax(QKᵀ/√d)V, fused: (B, h, N, d)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
        return self._merge(out)

    def explicit(
        self, x: torch.Tensor, H: int, W: int
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """``softmax(QKᵀ/√d)V`` written out: returns
        ``(output (B, N, C), weights (B, h, N, N_r))``."""
        q, k, v = self._heads(x, H, W)
        attn = (q @ k.transpose(-2, -1)) * self.scale  # (B, h, N, N_r)
        attn = attn.softmax(dim=-1)
        weights = attn
        if self.training and self.attn_drop > 0:
            attn = F.dropout(attn, p=self.attn_drop)
        return self._merge(attn @ v), weights  # (B, N, C), (B, h, N, N_r)

    def attention_map(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        """The attention weights ``(B, heads, N, N_r)``; each row sums to one."""
        return self.explicit(x, H, W)[1]

    def reduced_size(self, H: int, W: int) -> Tuple[int, int]:
        """Grid ``(H_r, W_r)`` of the keys and values for a ``H × W`` token grid."""
        return H // self.sr_ratio, W // self.sr_ratio

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, num_heads={self.num_heads}, sr_ratio={self.sr_ratio}"
        )


def efficient_attention_macs(H: int, W: int, dim: int, sr_ratio: int = 1) -> int:
    r"""Analytic MACs of one :class:`EfficientSelfAttention` on an ``H × W`` token
    grid.

    With :math:`N = HW` and :math:`N_r = \lfloor H/s\rfloor\lfloor W/s\rfloor`:
    :math:`NC^2` (q) + :math:`N_r s^2 C^2` (sr conv, if :math:`s>1`) +
    :math:`2N_rC^2` (kv) + :math:`2NN_rC` (:math:`QK^\top` and :math:`AV`) +
    :math:`NC^2` (proj). Biases, LayerNorm and softmax count zero, the policy of
    :func:`tutorial_lib.profiling.count_macs`. The attention term :math:`2NN_rC =
    2N^2C/R` is the paper's :math:`O(N^2/R)`.
    """
    for value, name in ((H, "H"), (W, "W"), (dim, "dim"), (sr_ratio, "sr_ratio")):
        check_positive(value, f"efficient_attention_macs {name}")
    n = H * W
    n_r = (H // sr_ratio) * (W // sr_ratio)
    sr = n_r * sr_ratio**2 * dim**2 if sr_ratio > 1 else 0
    return n * dim**2 + sr + 2 * n_r * dim**2 + 2 * n * n_r * dim + n * dim**2


# The paper's literal reduction and the weight maps moved to sequence_reduction.py;
# their old import path still works.
from .sequence_reduction import (  # noqa: E402, F401
    SequenceReductionLiteral,
    conv_weight_to_linear,
    linear_weight_to_conv,
)
