"""Position probes (chapter 10): does a stack of residual FFN blocks, fed a constant
token map, give the tokens something a later layer can read their position from?

A *constant* map (every token the same vector, like a blank image) goes through
``depth`` blocks ``x ← x + FFN(LN(x))`` with random weights. With Mix-FFN's zero-padded
3×3 depthwise convolution the border tokens see zeros and come out different; each
block carries that difference one token further in. Without the convolution (a
token-wise MLP) every token stays identical. Two read-outs say how much position the
features hold:

* :func:`distinct_tokens`: how many different feature vectors the grid holds (the
  positions a later layer could tell apart), with :func:`smallest_gap` to show that
  the count does not sit on its tolerance;
* :func:`position_r2`: the held-out R² of a ridge regression from the features to
  each token's normalised (row, column).

The stack computes in float64 by default, so that tokens of the same kind are equal
to rounding (~1e-16) while the weakest real difference (about 1e-9 after eight
blocks of a 16 × 16 grid) lies far above the default tolerance 1e-12.
"""

from __future__ import annotations

from typing import List

import torch
from torch import nn

from ._validate import check_positive
from .layers.mix_ffn import MixFFN

__all__ = [
    "FFNStack",
    "constant_tokens",
    "position_r2",
    "distinct_tokens",
    "smallest_gap",
]


class FFNStack(nn.Module):
    """``depth`` residual blocks ``x ← x + FFN(LN(x))`` with seeded random weights:
    Mix-FFN (``conv=True``, its depthwise convolution padded with ``padding_mode``)
    or the plain token-wise MLP (``conv=False``: the convolution replaced by the
    identity). Shapes: ``x: (B, N, C), H, W -> (B, N, C)``."""

    def __init__(
        self,
        depth: int,
        dim: int,
        conv: bool = True,
        padding_mode: str = "zeros",
        seed: int = 0,
    ) -> None:
        super().__init__()
        check_positive(depth, "FFNStack depth")
        check_positive(dim, "FFNStack dim")
        torch.manual_seed(seed)
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(depth))
        self.ffns = nn.ModuleList(
            MixFFN(dim, 4 * dim, padding_mode=padding_mode) for _ in range(depth)
        )
        if not conv:
            for ffn in self.ffns:
                ffn.dwconv = nn.Identity()  # a plain token-wise MLP
        self.eval()

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        for norm, ffn in zip(self.norms, self.ffns):
            x = x + ffn(norm(x), H, W)
        return x


def constant_tokens(
    side: int, dim: int, seed: int = 1, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """A constant ``side × side`` token map: one random vector, repeated,
    ``(1, side², dim)``."""
    check_positive(side, "constant_tokens side")
    check_positive(dim, "constant_tokens dim")
    vector = torch.randn(dim, generator=torch.Generator().manual_seed(seed))
    return vector.to(dtype).expand(1, side * side, dim).contiguous()


@torch.no_grad()
def stack_features(
    depth: int,
    side: int,
    dim: int,
    conv: bool = True,
    padding_mode: str = "zeros",
    dtype: torch.dtype = torch.float64,
    seed: int = 0,
) -> torch.Tensor:
    """The features ``(side², dim)`` of :func:`constant_tokens` after an
    :class:`FFNStack` of ``depth`` blocks (weights seeded by ``seed``), computed in
    ``dtype``."""
    stack = FFNStack(depth, dim, conv, padding_mode, seed).to(dtype)
    return stack(constant_tokens(side, dim, dtype=dtype), side, side)[0]


def _pairwise(features: torch.Tensor) -> torch.Tensor:
    # exact distances: cdist's default matrix-product path puts a token ~1e-3 from
    # itself in float32
    return torch.cdist(
        features, features, compute_mode="donot_use_mm_for_euclid_dist"
    )


def distinct_tokens(features: torch.Tensor, tol: float = 1e-12) -> int:
    """How many different vectors the rows of ``features (N, C)`` hold: rows closer
    than ``tol`` (Euclidean) count as one."""
    close = _pairwise(features) < tol
    return len({tuple(row.nonzero().flatten().tolist()) for row in close})


def smallest_gap(features: torch.Tensor, tol: float = 1e-12) -> float:
    """The smallest distance between two rows of ``features`` that are *not* equal
    within ``tol``; ``inf`` if all rows are equal. A count of
    :func:`distinct_tokens` is clean when this gap is far above ``tol`` and the
    largest distance between equal rows far below it."""
    d = _pairwise(features)
    apart = d[d >= tol]
    return float(apart.min()) if apart.numel() else float("inf")


def position_r2(
    features: torch.Tensor, side: int, lam: float = 1.0, splits: int = 5
) -> float:
    """Held-out R² of a ridge probe from ``features (side², C)`` to each token's
    (row, column) / (side − 1): fitted on a random half of the positions, scored on
    the other half, averaged over ``splits`` splits and the two coordinates."""
    n = side * side
    if features.ndim != 2 or features.shape[0] != n:
        raise ValueError(
            f"position_r2: expected features of shape ({n}, C) for a {side}×{side} "
            f"grid, got {tuple(features.shape)}"
        )
    features = features.double()
    rows, cols = torch.meshgrid(
        torch.arange(side), torch.arange(side), indexing="ij"
    )
    target = torch.stack([rows.flatten(), cols.flatten()], 1).double() / (side - 1)
    X = (features - features.mean(0)) / (features.std(0) + 1e-6)
    X = torch.cat([X, torch.ones(n, 1, dtype=X.dtype)], 1)
    scores: List[float] = []
    for seed in range(splits):
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        tr, te = perm[: n // 2], perm[n // 2 :]
        eye = torch.eye(X.shape[1], dtype=X.dtype)
        w = torch.linalg.solve(X[tr].T @ X[tr] + lam * eye, X[tr].T @ target[tr])
        residual = ((X[te] @ w - target[te]) ** 2).sum(0)
        total = ((target[te] - target[te].mean(0)) ** 2).sum(0)
        scores.append((1 - residual / total).mean().item())
    return sum(scores) / splits
