"""Multi-head self-attention as ViT uses it (Vaswani et al. 2017, §3.2; Dosovitskiy
et al. 2021, eq. 2).

For each head :math:`h` with :math:`d = D/H` channels,
:math:`\\mathrm{head}_h = \\mathrm{softmax}(Q_h K_h^\\top/\\sqrt{d})\\,V_h`, and
:math:`\\mathrm{MSA}(z) = [\\mathrm{head}_1;\\dots;\\mathrm{head}_H]\\,W_{proj}`.
The cost is :math:`O(N^2 D)`: every token attends to every other token.
"""

from __future__ import annotations

import math
from typing import Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from .._validate import check_positive, check_tokens

__all__ = ["attention_explicit", "Attention"]


def attention_explicit(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor]:
    """``softmax(Q Kᵀ / √d) V`` written out; returns
    ``(output, attention weights)``.

    ``q: (..., N, d)``, ``k: (..., M, d)``,
    ``v: (..., M, d_v) -> (..., N, d_v), (..., N, M)``. Mathematically the same as
    ``F.scaled_dot_product_attention`` (which never materialises the ``N×M`` matrix
    when a fused kernel is available).
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor) or t.ndim < 2:
            got = (
                tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            )
            raise ValueError(
                f"attention_explicit: expected {name} a tensor (..., N, d), "
                f"got {got}"
            )
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(
            "attention_explicit: expected q (..., N, d), k (..., M, d), "
            "v (..., M, d_v), "
            f"got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., N, M)
    weights = scores.softmax(dim=-1)  # each row sums to 1
    return weights @ v, weights  # (..., N, d_v), (..., N, M)


class Attention(nn.Module):
    """ViT multi-head self-attention with one ``qkv`` projection and an output
    ``proj``.

    Module names follow timm and SETR (``qkv``, ``proj``).
    ``x: (B, N, D) -> (B, N, D)``. The default path calls
    ``F.scaled_dot_product_attention``; ``return_attention=True`` (or
    ``fused=False``) takes the explicit ``softmax(QKᵀ/√d)V`` path, which can also
    return the attention maps ``(B, H, N, N)``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        fused: bool = True,
    ) -> None:
        super().__init__()
        check_positive(dim, "Attention dim")
        check_positive(num_heads, "Attention num_heads")
        if dim % num_heads:
            raise ValueError(
                f"Attention: expected dim divisible by num_heads={num_heads}, got "
                f"dim={dim}"
            )
        self.dim = dim
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.fused = fused
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(
        self, x: torch.Tensor, return_attention: bool = False
    ) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        check_tokens(x, "Attention input", dim=self.dim)
        b, n, c = x.shape
        # (B, N, 3D) -> (B, N, 3, H, d) -> q, k, v, each (B, H, N, d)
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 × (B, H, N, d)
        weights = None
        if self.fused and not return_attention:
            p = self.attn_drop.p if self.training else 0.0
            # softmax(QKᵀ/√d)V, fused: (B, H, N, d)
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        else:
            out, weights = attention_explicit(q, k, v)  # (B, H, N, d), (B, H, N, N)
            out = (
                self.attn_drop(weights) @ v
                if self.training and self.attn_drop.p > 0
                else out
            )
        out = out.transpose(1, 2).reshape(b, n, c)  # concatenate heads: (B, N, D)
        out = self.proj_drop(self.proj(out))  # (B, N, D)
        return (out, weights) if return_attention else out
