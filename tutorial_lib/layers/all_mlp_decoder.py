"""SegFormer's All-MLP decoder (chapter 11), as the paper draws it and folded for
inference.

:class:`AllMLPDecoder` is the teaching path: per-stage Linear to a common width
``C``, bilinear upsampling to 1/4 of the input, concatenation, a fuse layer and a
per-pixel classifier.

:class:`FoldedAllMLPDecoder` computes the same logits in eval mode for a fraction of
the cost. Bilinear upsampling is linear per channel and keeps constants (its weights
sum to one), so it commutes with any per-pixel affine map. Each stage's Linear, its
slice of the 1×1 fuse convolution and the eval-mode BatchNorm are therefore one
``C_i → C`` matrix applied *before* upsampling, and the concatenation followed by
the fuse convolution becomes a sum.
"""

from __future__ import annotations

from typing import List, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._validate import check_image_batch, check_positive

__all__ = ["AllMLPDecoder", "FoldedAllMLPDecoder", "fold_all_mlp_decoder"]


def _check_features(features: object, dims: Sequence[int], name: str) -> None:
    if not isinstance(features, (list, tuple)) or len(features) != len(dims):
        got = (
            f"{type(features).__name__} of length {len(features)}"
            if isinstance(features, (list, tuple))
            else type(features).__name__
        )
        raise ValueError(
            f"{name}: expected a list of {len(dims)} feature maps (B, C_i, H_i, "
            "W_i) with "
            f"C_i = {list(dims)}, got {got}"
        )
    for i, (f, c) in enumerate(zip(features, dims)):
        check_image_batch(f, f"{name} feature {i + 1}", channels=c)


class AllMLPDecoder(nn.Module):
    r"""The All-MLP decoder of SegFormer (Xie et al., 2021, §3.2, eq. 4), as the
    official code builds it.

    .. math::
        \hat F_i &= \mathrm{Linear}(C_i, C)(F_i),\ \forall i \\
        \hat F_i &= \mathrm{Upsample}\big(\tfrac{H}{4} \times \tfrac{W}{4}\big)
            (\hat F_i) \\
        F &= \mathrm{Linear}(4C, C)\big(\mathrm{Concat}(\hat F_i)\big) \\
        M &= \mathrm{Linear}(C, N_{cls})(F)

    ``linear_c[i]`` are ``nn.Linear(C_i, C)`` on the flattened tokens; upsampling is
    bilinear with ``align_corners=False`` to the size of the stage-1 map; the
    concatenation order is ``[c4, c3, c2, c1]`` (the official ``SegFormerHead``).
    The fuse layer is the official ``ConvModule``: ``linear_fuse`` (1×1 conv, no
    bias) → ``norm`` (BatchNorm) → ReLU, which the paper's equation does not show.
    Then ``Dropout2d(dropout)`` and ``linear_pred`` (1×1 conv).

    Shapes: ``[(B, C_i, H_i, W_i)] * 4 -> logits (B, num_classes, H_1, W_1)`` (1/4
    of the image).
    """

    def __init__(
        self,
        in_dims: Sequence[int],
        embed_dim: int = 256,
        num_classes: int = 150,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        in_dims = tuple(in_dims)
        if len(in_dims) == 0:
            raise ValueError(
                "AllMLPDecoder in_dims: expected at least one stage width, got none"
            )
        for i, c in enumerate(in_dims):
            check_positive(c, f"AllMLPDecoder in_dims[{i}]")
        check_positive(embed_dim, "AllMLPDecoder embed_dim")
        check_positive(num_classes, "AllMLPDecoder num_classes")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(
                "AllMLPDecoder dropout: expected a probability in [0, 1), got "
                f"{dropout!r}"
            )
        self.in_dims = in_dims
        self.embed_dim = embed_dim
        self.num_classes = num_classes
        self.linear_c = nn.ModuleList(nn.Linear(c, embed_dim) for c in in_dims)
        self.linear_fuse = nn.Conv2d(
            len(in_dims) * embed_dim, embed_dim, 1, bias=False
        )
        self.norm = nn.BatchNorm2d(embed_dim)
        self.act = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout2d(dropout)
        self.linear_pred = nn.Conv2d(embed_dim, num_classes, 1)

    def upsampled_maps(self, features: List[torch.Tensor]) -> List[torch.Tensor]:
        r"""The maps :math:`\hat F_i` ``(B, C, H/4, W/4)``, stage 1 first: each
        stage map projected to ``C`` channels by its linear layer and upsampled
        bilinearly to the stage-1 size (steps 1 and 2 of the decoder)."""
        _check_features(features, self.in_dims, "AllMLPDecoder")
        size = features[0].shape[-2:]  # H/4 × W/4
        upsampled = []
        for f, linear in zip(features, self.linear_c):
            b, _, h, w = f.shape
            x = linear(f.flatten(2).transpose(1, 2))  # (B, h·w, C)
            x = x.transpose(1, 2).reshape(b, self.embed_dim, h, w)  # (B, C, h, w)
            if (h, w) != tuple(size):
                x = F.interpolate(x, size=size, mode="bilinear")  # (B, C, H/4, W/4)
            upsampled.append(x)
        return upsampled

    def forward(self, features: List[torch.Tensor]) -> torch.Tensor:
        """Logits ``(B, K, H_1, W_1)`` from the four stage maps (stage 1 first)."""
        upsampled = self.upsampled_maps(features)  # 4 × (B, C, H/4, W/4)
        # the official order of the concatenation: [c4, c3, c2, c1]
        x = torch.cat(upsampled[::-1], dim=1)  # (B, 4C, H/4, W/4)
        x = self.act(self.norm(self.linear_fuse(x)))  # (B, C, H/4, W/4)
        return self.linear_pred(self.dropout(x))  # (B, K, H/4, W/4)


class FoldedAllMLPDecoder(nn.Module):
    r"""Inference-only form of :class:`AllMLPDecoder`: the same logits, the fuse
    layer folded away.

    With ``linear_c[i]`` = :math:`(W_i, b_i)`, the fuse weight's slice for stage
    :math:`i` :math:`W_f^{(i)}` and eval-mode BatchNorm :math:`y = s \odot x + t`,
    and since bilinear upsampling :math:`U` is linear and keeps constants,

    .. math::
        & s \odot W_f \,\mathrm{Concat}_i\, U(W_i F_i + b_i) + t \\
        &= \sum_i U\big(\underbrace{s \odot W_f^{(i)} W_i}_{M_i}\, F_i\big)
          + \underbrace{s \odot \textstyle\sum_i W_f^{(i)} b_i + t}_{b}

    ``weights[i]`` holds :math:`M_i` as a 1×1 convolution ``(C, C_i, 1, 1)`` applied
    at stage ``i``'s own resolution; ``bias`` is :math:`b`. The ``N_1 · 4C · C``
    MACs of the fuse layer at 1/4 resolution disappear; what remains is
    ``Σ N_i · C_i · C`` plus the classifier. Training needs the unfolded decoder
    (BatchNorm statistics, gradients for each factor).

    Shapes: ``[(B, C_i, H_i, W_i)] * 4 -> logits (B, num_classes, H_1, W_1)``.
    """

    def __init__(
        self, in_dims: Sequence[int], embed_dim: int, num_classes: int
    ) -> None:
        super().__init__()
        self.in_dims = tuple(in_dims)
        self.embed_dim = embed_dim
        self.num_classes = num_classes
        self.weights = nn.ParameterList(
            nn.Parameter(torch.zeros(embed_dim, c, 1, 1), requires_grad=False)
            for c in self.in_dims
        )
        self.bias = nn.Parameter(torch.zeros(embed_dim), requires_grad=False)
        self.linear_pred = nn.Conv2d(embed_dim, num_classes, 1)

    @classmethod
    def from_decoder(cls, decoder: AllMLPDecoder) -> "FoldedAllMLPDecoder":
        """Fold a (trained) :class:`AllMLPDecoder`; computed in float64, stored in
        its dtype."""
        if not isinstance(decoder, AllMLPDecoder):
            raise ValueError(
                f"FoldedAllMLPDecoder.from_decoder: expected an AllMLPDecoder, "
                f"got {type(decoder).__name__}"
            )
        folded = cls(decoder.in_dims, decoder.embed_dim, decoder.num_classes)
        dtype = decoder.linear_fuse.weight.dtype
        c, n = decoder.embed_dim, len(decoder.in_dims)
        with torch.no_grad():
            bn = decoder.norm
            std = torch.sqrt(bn.running_var.double() + bn.eps)
            scale = bn.weight.double() / std  # s
            bias = bn.bias.double() - scale * bn.running_mean.double()  # t
            fuse = decoder.linear_fuse.weight.double().flatten(1)  # (C, 4C)
            for i, linear in enumerate(decoder.linear_c):
                slot = n - 1 - i  # the concatenation is [c4, c3, c2, c1]
                w_fi = fuse[:, slot * c : (slot + 1) * c]  # (C, C)
                m_i = w_fi @ linear.weight.double()  # (C, C_i)
                merged = scale[:, None] * m_i  # (C, C_i)
                folded.weights[i].copy_(merged[:, :, None, None].to(dtype))
                bias += scale * (w_fi @ linear.bias.double())
            folded.bias.copy_(bias.to(dtype))
            folded.linear_pred.load_state_dict(decoder.linear_pred.state_dict())
        return folded.to(decoder.linear_fuse.weight.device).eval()

    def forward(self, features: List[torch.Tensor]) -> torch.Tensor:
        """Logits ``(B, K, H_1, W_1)``: merged maps at each stage's resolution,
        upsampled and summed."""
        _check_features(features, self.in_dims, "FoldedAllMLPDecoder")
        size = features[0].shape[-2:]
        x = F.conv2d(features[0], self.weights[0], self.bias)  # (B, C, H/4, W/4)
        for f, weight in zip(features[1:], self.weights[1:]):
            # the merged map, at the stage's own (low) resolution
            y = F.conv2d(f, weight)  # (B, C, H_i, W_i)
            x += F.interpolate(y, size=size, mode="bilinear")  # (B, C, H/4, W/4)
        return self.linear_pred(torch.relu_(x))  # (B, K, H/4, W/4)


def fold_all_mlp_decoder(decoder: AllMLPDecoder) -> FoldedAllMLPDecoder:
    """Shorthand for :meth:`FoldedAllMLPDecoder.from_decoder`."""
    return FoldedAllMLPDecoder.from_decoder(decoder)
