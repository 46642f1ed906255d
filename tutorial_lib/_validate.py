"""Input validation shared by every public layer and model.

Each helper raises a ``ValueError`` that names what was expected and what came, so a
wrong input fails at the entry point of the module that received it, not deep inside
``torch.nn.functional``.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch

__all__ = [
    "check_image_batch",
    "check_tokens",
    "check_token_grid",
    "check_positive",
    "check_choice",
    "check_divisible",
]


def check_image_batch(
    x: object, name: str, channels: Optional[int] = None, min_size: int = 1
) -> None:
    """Check that ``x`` is a ``(B, C, H, W)`` tensor with ``channels`` channels."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(
            f"{name}: expected a torch.Tensor of shape (B, C, H, W), got {type(x).__name__}"
        )
    if x.ndim != 4:
        raise ValueError(
            f"{name}: expected a 4-D tensor (B, C, H, W), got shape {tuple(x.shape)} "
            f"with {x.ndim} dimension(s)"
        )
    if channels is not None and x.shape[1] != channels:
        raise ValueError(
            f"{name}: expected {channels} input channels (dim 1), got {x.shape[1]} "
            f"(input shape {tuple(x.shape)})"
        )
    h, w = x.shape[-2:]
    if h < min_size or w < min_size:
        raise ValueError(
            f"{name}: expected height and width >= {min_size}, got {h}x{w}"
        )


def check_tokens(
    x: object, name: str, dim: Optional[int] = None, length: Optional[int] = None
) -> None:
    """Check that ``x`` is a ``(B, N, C)`` token tensor (with ``C == dim`` and
    ``N == length``)."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(
            f"{name}: expected a torch.Tensor of shape (B, N, C), got {type(x).__name__}"
        )
    if x.ndim != 3:
        raise ValueError(
            f"{name}: expected a 3-D token tensor (B, N, C), got shape {tuple(x.shape)}"
        )
    if dim is not None and x.shape[-1] != dim:
        raise ValueError(
            f"{name}: expected token dimension C={dim}, got {x.shape[-1]} "
            f"(input shape {tuple(x.shape)})"
        )
    if length is not None and x.shape[1] != length:
        raise ValueError(
            f"{name}: expected N={length} tokens, got {x.shape[1]} "
            f"(input shape {tuple(x.shape)})"
        )


def check_token_grid(
    x: object, name: str, H: int, W: int, dim: Optional[int] = None
) -> None:
    """Check that ``x`` is a ``(B, N, C)`` token tensor of an ``H × W`` grid
    (``N == H·W``, ``C == dim``); ``H`` and ``W`` are positive integers."""
    check_positive(H, f"{name} H")
    check_positive(W, f"{name} W")
    check_tokens(x, f"{name} input", dim=dim)
    if x.shape[1] != H * W:
        raise ValueError(
            f"{name} input: expected N = H·W = {H}·{W} = {H * W} tokens, "
            f"got N={x.shape[1]}"
        )


def check_positive(value: object, name: str) -> None:
    """Check that ``value`` is a positive integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")


def check_choice(value: object, name: str, choices: Sequence[object]) -> None:
    """Check that ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name}: expected one of {list(choices)}, got {value!r}")


def check_divisible(value: int, divisor: int, name: str, what: str = "") -> None:
    """Check that ``value`` is divisible by ``divisor``."""
    if value % divisor != 0:
        extra = f" ({what})" if what else ""
        raise ValueError(
            f"{name}: expected a multiple of {divisor}{extra}, got {value}"
        )
