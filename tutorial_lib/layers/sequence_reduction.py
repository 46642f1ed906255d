"""The sequence reduction of SegFormer's efficient self-attention as the paper
writes it (Xie et al., 2021, §3.1, eq. 2): a reshape plus a linear layer.

The official code uses a convolution with kernel = stride = ``sr_ratio`` followed by
LayerNorm (:class:`~tutorial_lib.layers.efficient_attention.EfficientSelfAttention`),
which is the same operator when the reshape groups ``sr × sr`` neighbourhoods and
``R = sr²``: :func:`conv_weight_to_linear` and :func:`linear_weight_to_conv` map one
weight to the other (chapter 09).
"""

from __future__ import annotations

import torch
from torch import nn

from .._validate import check_choice, check_positive, check_token_grid

__all__ = [
    "SequenceReductionLiteral",
    "conv_weight_to_linear",
    "linear_weight_to_conv",
]


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
