"""Plotting helpers: class palette, mask colouring, overlays, batches and training
curves."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from .data import CLASS_NAMES

__all__ = [
    "PALETTE",
    "colorize",
    "overlay",
    "show_batch",
    "plot_history",
    "legend_handles",
]

#: One RGB colour per class id (background black; 255 = ignore is shown white).
PALETTE = np.array(
    [
        [0, 0, 0],
        [230, 25, 75],
        [60, 180, 75],
        [255, 225, 25],
        [0, 130, 200],
        [245, 130, 48],
        [145, 30, 180],
        [70, 240, 240],
        [240, 50, 230],
        [210, 245, 60],
        [250, 190, 212],
        [0, 128, 128],
    ],
    dtype=np.uint8,
)


def colorize(mask: torch.Tensor) -> np.ndarray:
    """``(H, W)`` integer mask → ``(H, W, 3)`` uint8 colours (class ids beyond the
    palette wrap)."""
    m = (
        mask.detach().cpu().numpy()
        if isinstance(mask, torch.Tensor)
        else np.asarray(mask)
    )
    if m.ndim != 2:
        raise ValueError(
            f"colorize: expected a 2-D mask (H, W), got shape {m.shape}"
        )
    out = PALETTE[m % len(PALETTE)]
    out[m == 255] = 255
    return out


def _to_hwc(image: torch.Tensor) -> np.ndarray:
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(
            f"expected an image (3, H, W), got shape {tuple(image.shape)}"
        )
    return image.detach().cpu().permute(1, 2, 0).clamp(0, 1).numpy()


def overlay(
    image: torch.Tensor, mask: torch.Tensor, alpha: float = 0.5
) -> np.ndarray:
    """Blend the colour-coded ``mask`` over ``image`` (3, H, W) → ``(H, W, 3)``
    float array."""
    return (1 - alpha) * _to_hwc(image) + alpha * colorize(mask) / 255.0


def legend_handles(class_names: Sequence[str] = CLASS_NAMES):
    """Matplotlib legend patches for the palette."""
    from matplotlib.patches import Patch

    return [
        Patch(color=PALETTE[i % len(PALETTE)] / 255.0, label=n)
        for i, n in enumerate(class_names)
    ]


def show_batch(
    images: torch.Tensor,
    masks: torch.Tensor,
    preds: Optional[torch.Tensor] = None,
    class_names: Sequence[str] = CLASS_NAMES,
    max_items: int = 6,
    titles: Optional[Sequence[str]] = None,
):
    """Show images with their masks (and predictions) in columns; returns the
    figure."""
    import matplotlib.pyplot as plt

    if images.ndim != 4 or masks.ndim != 3:
        raise ValueError(
            f"show_batch: expected images (B, 3, H, W) and masks (B, H, W), "
            f"got {tuple(images.shape)} and {tuple(masks.shape)}"
        )
    n = min(len(images), max_items)
    rows = 2 if preds is None else 3
    fig, axes = plt.subplots(
        rows, n, figsize=(2.0 * n, 2.0 * rows + 0.4), squeeze=False
    )
    for i in range(n):
        axes[0, i].imshow(_to_hwc(images[i]))
        axes[1, i].imshow(colorize(masks[i]))
        if preds is not None:
            axes[2, i].imshow(colorize(preds[i]))
        if titles is not None:
            axes[0, i].set_title(titles[i], fontsize=9)
    for r, label in enumerate(["image", "target", "prediction"][:rows]):
        axes[r, 0].set_ylabel(label)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.legend(
        handles=legend_handles(class_names),
        loc="lower center",
        ncol=len(class_names),
        fontsize=8,
        frameon=False,
    )
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def plot_history(history, ax=None, label: Optional[str] = None):
    """Training loss (smoothed) against step, with validation mIoU on a second axis
    if present."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    loss = np.asarray(history.train_loss)
    k = max(1, len(loss) // 20)
    smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
    ax.plot(history.steps[: len(smooth)], smooth, label=label or "train loss")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy")
    if history.val:
        ax2 = ax.twinx()
        ax2.plot(
            history.val_steps,
            [v.miou for v in history.val],
            "o--",
            color="C3",
            label="val mIoU",
        )
        ax2.set_ylabel("val mIoU")
        ax2.set_ylim(0, 1)
    return ax
