"""Explorers for chapters 06–07: how the patch size sets ViT's token grid and
sequence length.

:func:`patch_grid_explorer` (ipywidgets) and its static twin
:func:`patch_grid_figure` both draw with :func:`plot_patch_grid`, so the book's
figure is exactly what the slider shows.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch

from .._validate import check_positive

__all__ = [
    "token_stats",
    "crop_to_multiple",
    "plot_patch_grid",
    "patch_grid_figure",
    "patch_grid_explorer",
]


def crop_to_multiple(image: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Centre-crop a ``(C, H, W)`` image to the largest size divisible by
    ``patch_size``."""
    check_positive(patch_size, "crop_to_multiple patch_size")
    if not isinstance(image, torch.Tensor) or image.ndim != 3:
        raise ValueError(
            f"crop_to_multiple: expected an image (C, H, W), got "
            f"{tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__}"
        )
    h, w = image.shape[-2:]
    nh, nw = h // patch_size * patch_size, w // patch_size * patch_size
    if nh == 0 or nw == 0:
        raise ValueError(
            "crop_to_multiple: expected an image at least "
            f"{patch_size}x{patch_size}, got {h}x{w}"
        )
    top, left = (h - nh) // 2, (w - nw) // 2
    return image[:, top : top + nh, left : left + nw]


def token_stats(height: int, width: int, patch_size: int) -> Dict[str, int]:
    """Token grid, sequence length ``N = HW/P²`` and attention-matrix entries ``N²``
    (per head)."""
    for v, name in (
        (height, "height"),
        (width, "width"),
        (patch_size, "patch_size"),
    ):
        check_positive(v, f"token_stats {name}")
    gh, gw = height // patch_size, width // patch_size
    n = gh * gw
    return {
        "grid_h": gh,
        "grid_w": gw,
        "tokens": n,
        "attention_entries": n * n,
        "patch_values": 3 * patch_size * patch_size,
    }


def plot_patch_grid(
    image: torch.Tensor, patch_size: int, ax=None, show_numbers: bool = True
):
    """Draw ``image`` (cropped to a multiple of P) with its P×P patch grid and a
    summary title."""
    import matplotlib.pyplot as plt

    image = crop_to_multiple(image, patch_size)
    h, w = image.shape[-2:]
    stats = token_stats(h, w, patch_size)
    ax = ax if ax is not None else plt.gca()
    ax.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy())
    for y in range(0, h + 1, patch_size):
        ax.axhline(y - 0.5, color="white", lw=0.6, alpha=0.9)
    for x in range(0, w + 1, patch_size):
        ax.axvline(x - 0.5, color="white", lw=0.6, alpha=0.9)
    if show_numbers and stats["tokens"] <= 64:
        for i in range(stats["grid_h"]):
            for j in range(stats["grid_w"]):
                ax.text(
                    j * patch_size + patch_size / 2,
                    i * patch_size + patch_size / 2,
                    str(i * stats["grid_w"] + j),
                    color="yellow",
                    ha="center",
                    va="center",
                    fontsize=7,
                )
    ax.set_title(
        f"P={patch_size}: {stats['grid_h']}×{stats['grid_w']} grid, "
        f"N={stats['tokens']:,}\n"
        f"N²={stats['attention_entries']:,} scores per head",
        fontsize=9,
    )
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def patch_grid_figure(
    image: torch.Tensor, patch_sizes: Sequence[int] = (128, 64, 32, 16)
):
    """Static twin of the explorer: the same image cut with several patch sizes,
    side by side."""
    import matplotlib.pyplot as plt

    if not patch_sizes:
        raise ValueError(
            "patch_grid_figure: expected at least one patch size, got none"
        )
    # two panels a row, so that the figure fits the book's 7-inch column at a
    # readable size
    cols = min(2, len(patch_sizes))
    rows = -(-len(patch_sizes) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7.0, 3.6 * rows), squeeze=False)
    for ax, p in zip(axes.flat, patch_sizes):
        plot_patch_grid(image, p, ax=ax)
    for ax in list(axes.flat)[len(patch_sizes) :]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def patch_grid_explorer(image: Optional[torch.Tensor] = None):
    """Slider over patch size and image side: redraws the grid and prints N and
    N²."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    from ..data import sample_image

    base = sample_image() if image is None else image
    patch = widgets.SelectionSlider(
        options=[8, 16, 32, 64, 128], value=16, description="patch P"
    )
    side = widgets.SelectionSlider(
        options=[128, 256, 384, 512], value=512, description="image side"
    )
    out = widgets.Output()

    def redraw(*_: object) -> None:
        import io

        from IPython.display import Image

        img = torch.nn.functional.interpolate(
            base[None],
            size=(side.value, side.value),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )[0]
        fig, ax = plt.subplots(figsize=(4, 4.3))
        plot_patch_grid(img, patch.value, ax=ax)
        # Write the PNG into the Output widget's state (``with out: plt.show()``
        # needs a front end, which nbval and nbclient do not have: the capture would
        # block or leak into the cell).
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", bbox_inches="tight")
        plt.close(fig)
        out.outputs = ()
        out.append_display_data(Image(data=buffer.getvalue(), format="png"))

    patch.observe(redraw, names="value")
    side.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox([patch, side]), out])
