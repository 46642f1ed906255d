"""SegFormer's efficient self-attention with sequence reduction (chapter 09).

Queries come from all ``N = H·W`` tokens; keys and values from a sequence shortened
``R``-fold, so the attention matrix is ``N × N/R`` instead of ``N × N``. The paper
writes the reduction as a reshape plus a linear layer (eq. 2,
:class:`SequenceReductionLiteral`); the official code uses a convolution with kernel
= stride = ``sr_ratio`` followed by LayerNorm, which is the same operator when the
reshape groups ``sr × sr`` neighbourhoods and ``R = sr²``
(:func:`conv_weight_to_linear`, :func:`linear_weight_to_conv`).
"""

from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .._validate import check_choice, check_positive, check_token_grid

__all__ = [
    "EfficientSelfAttention",
    "SequenceReductionLiteral",
    "conv_weight_to_linear",
    "linear_weight_to_conv",
    "efficient_attention_macs",
]


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


class SequenceReductionLiteral(nn.Module):
    r"""The paper's sequence reduction written as eq. 2 (Xie et al., 2021, §3.1):

    .. math:: \hat K = \mathrm{Reshape}\big(\tfrac{N}{R}, C\cdot R\big)(K), \qquad
              K = \mathrm{Linear}(C\cdot R, C)(\hat K)

    ``grouping`` decides which ``R`` tokens the reshape puts in one row:

    * ``"raster"``: ``R`` consecutive tokens in raster order, literally
      ``K.reshape(B, N/R, C·R)`` (a strip of ``R`` pixels of one image row);
    * ``"window"``: the ``s × s`` neighbourhood of a non-overlapping window,
      ``R = s²``, with the row layout ``(dy, dx, c)``. This is the official code's
      strided convolution (kernel = stride = ``s``), see :meth:`from_conv` /
      :meth:`to_conv`.

    Shapes: ``x: (B, N, C), H, W -> (B, N/R, C)``. The reshape needs ``N`` divisible
    by ``R`` (``"raster"``) or ``H`` and ``W`` divisible by ``s`` (``"window"``).
    """

    def __init__(self, dim: int, reduction: int, grouping: str = "window") -> None:
        super().__init__()
        check_positive(dim, "SequenceReductionLiteral dim")
        check_positive(reduction, "SequenceReductionLiteral reduction")
        check_choice(
            grouping, "SequenceReductionLiteral grouping", ("window", "raster")
        )
        side = int(round(reduction**0.5))
        if grouping == "window" and side * side != reduction:
            raise ValueError(
                "SequenceReductionLiteral: grouping='window' needs R = s² (a "
                "square "
                f"number), got R={reduction}"
            )
        self.dim = dim
        self.reduction = reduction
        self.side = side
        self.grouping = grouping
        self.linear = nn.Linear(dim * reduction, dim)

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        """``x: (B, N, C)`` tokens of an ``H × W`` grid ``-> (B, N/R, C)``."""
        check_token_grid(x, "SequenceReductionLiteral", H, W, dim=self.dim)
        b, n, c = x.shape
        if self.grouping == "raster":
            if n % self.reduction != 0:
                raise ValueError(
                    "SequenceReductionLiteral: expected N divisible by "
                    f"R={self.reduction}, got N={n}"
                )
            r = self.reduction
            x_hat = x.reshape(b, n // r, c * r)  # (B, N/R, C·R)
        else:
            s = self.side
            if H % s != 0 or W % s != 0:
                raise ValueError(
                    "SequenceReductionLiteral: expected H and W divisible by "
                    f"s={s}, got H={H}, W={W}"
                )
            x_hat = x.reshape(b, H // s, s, W // s, s, c)  # (B, H/s, s, W/s, s, C)
            x_hat = x_hat.permute(0, 1, 3, 2, 4, 5)  # (B, H/s, W/s, dy, dx, C)
            x_hat = x_hat.reshape(b, n // (s * s), s * s * c)  # (B, N/R, C·R)
        return self.linear(x_hat)  # (B, N/R, C)

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> "SequenceReductionLiteral":
        """The ``"window"`` literal reduction computing the same function as
        ``conv``."""
        _check_sr_conv(conv)
        s = conv.kernel_size[0]
        lit = cls(conv.in_channels, s * s, grouping="window")
        with torch.no_grad():
            lit.linear.weight.copy_(conv_weight_to_linear(conv.weight))
            lit.linear.bias.copy_(
                conv.bias
                if conv.bias is not None
                else torch.zeros(conv.out_channels)
            )
        return lit

    def to_conv(self) -> nn.Conv2d:
        """The strided convolution (kernel = stride = ``s``) equal to this
        ``"window"`` reduction."""
        if self.grouping != "window":
            raise ValueError(
                "SequenceReductionLiteral.to_conv: expected grouping='window', "
                f"got {self.grouping!r} "
                f"(a raster strip of R pixels is not a square convolution window)"
            )
        conv = nn.Conv2d(self.dim, self.dim, self.side, stride=self.side)
        with torch.no_grad():
            conv.weight.copy_(linear_weight_to_conv(self.linear.weight, self.side))
            conv.bias.copy_(self.linear.bias)
        return conv


def _check_sr_conv(conv: object) -> None:
    if not isinstance(conv, nn.Conv2d):
        raise ValueError(f"expected an nn.Conv2d, got {type(conv).__name__}")
    k, s = conv.kernel_size, conv.stride
    if (
        k[0] != k[1]
        or tuple(s) != tuple(k)
        or conv.padding not in ((0, 0), 0)
        or conv.groups != 1
    ):
        raise ValueError(
            "expected a square conv with kernel = stride, no padding, groups=1, "
            "got "
            f"kernel={k}, stride={s}, padding={conv.padding}, groups={conv.groups}"
        )


def conv_weight_to_linear(weight: torch.Tensor) -> torch.Tensor:
    """Map an sr-conv weight ``(C_out, C_in, s, s)`` to the literal Linear's
    ``(C_out, s·s·C_in)``.

    The literal reshape lays out one window as ``(dy, dx, c)``, so the conv weight's
    input channel axis moves last before flattening.
    """
    if (
        not isinstance(weight, torch.Tensor)
        or weight.ndim != 4
        or weight.shape[2] != weight.shape[3]
    ):
        shape = (
            tuple(weight.shape)
            if isinstance(weight, torch.Tensor)
            else type(weight).__name__
        )
        raise ValueError(
            "conv_weight_to_linear: expected a (C_out, C_in, s, s) tensor, got "
            f"{shape}"
        )
    c_out = weight.shape[0]
    return weight.permute(0, 2, 3, 1).reshape(c_out, -1)  # (C_out, s·s·C_in)


def linear_weight_to_conv(weight: torch.Tensor, side: int) -> torch.Tensor:
    """Inverse of :func:`conv_weight_to_linear`:
    ``(C_out, s·s·C_in) -> (C_out, C_in, s, s)``."""
    check_positive(side, "linear_weight_to_conv side")
    if (
        not isinstance(weight, torch.Tensor)
        or weight.ndim != 2
        or weight.shape[1] % (side * side) != 0
    ):
        shape = (
            tuple(weight.shape)
            if isinstance(weight, torch.Tensor)
            else type(weight).__name__
        )
        raise ValueError(
            "linear_weight_to_conv: expected a (C_out, s·s·C_in) tensor with "
            f"s={side}, got {shape}"
        )
    c_out, c_in = weight.shape[0], weight.shape[1] // (side * side)
    weight = weight.reshape(c_out, side, side, c_in)  # (C_out, s, s, C_in)
    return weight.permute(0, 3, 1, 2).contiguous()  # (C_out, C_in, s, s)
