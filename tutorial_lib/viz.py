"""Plotting helpers: class palette, mask colouring, overlays, batches, training
curves, and the drawing of results over seeds.

``viz`` draws what it is given and imports only what it draws (``data``'s class names,
``layers.atrous``' footprints): the modules that look results up
(:mod:`tutorial_lib.experiment_plots` for the recorded experiments) sit above it
and call it.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from .data import CLASS_NAMES
from .layers.atrous import atrous_footprint, receptive_field

__all__ = [
    "plot_seed_bars",
    "plot_mean_curves",
    "PALETTE",
    "colorize",
    "overlay",
    "show_batch",
    "plot_history",
    "legend_handles",
    "compare_zoom",
    "atrous_gridding",
    "tokenisation_schemes",
]

#: One RGB colour per class id (background black; 255 = ignore is shown white). The
#: label colours follow the paint of :mod:`tutorial_lib.data`: boxes blue, triangles
#: green, wires purple; discs and rings share red and orange paint, so their labels
#: split them: discs red, rings orange.
PALETTE = np.array(
    [
        [0, 0, 0],
        [230, 25, 75],
        [0, 130, 200],
        [60, 180, 75],
        [245, 130, 48],
        [145, 30, 180],
        [255, 225, 25],
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
    width: Optional[float] = None,
):
    """Show images with their masks (and predictions) in columns; returns the
    figure. ``width`` (inches) sizes it for a page column (7 for the book's, text at
    8.5 pt); by default each panel is 2 in wide."""
    import matplotlib.pyplot as plt

    if images.ndim != 4 or masks.ndim != 3:
        raise ValueError(
            f"show_batch: expected images (B, 3, H, W) and masks (B, H, W), "
            f"got {tuple(images.shape)} and {tuple(masks.shape)}"
        )
    n = min(len(images), max_items)
    rows = 2 if preds is None else 3
    side = 2.0 if width is None else width / n
    text = 8 if width is None else 8.5
    fig, axes = plt.subplots(
        rows, n, figsize=(side * n, side * rows + 0.4), squeeze=False
    )
    for i in range(n):
        axes[0, i].imshow(_to_hwc(images[i]))
        axes[1, i].imshow(colorize(masks[i]))
        if preds is not None:
            axes[2, i].imshow(colorize(preds[i]))
        if titles is not None:
            axes[0, i].set_title(titles[i], fontsize=9)
    for r, label in enumerate(["image", "target", "prediction"][:rows]):
        axes[r, 0].set_ylabel(label, fontsize=None if width is None else text)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.legend(
        handles=legend_handles(class_names),
        loc="lower center",
        ncol=len(class_names),
        fontsize=text,
        frameon=False,
    )
    fig.tight_layout(
        rect=(0, 0.06 if width is None else 0.4 / (side * rows + 0.4), 1, 1)
    )
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
    ax.set_ylabel("training loss (cross-entropy)", color="C0")
    if history.val:
        ax2 = ax.twinx()
        ax2.plot(
            history.val_steps,
            [v.miou for v in history.val],
            "o--",
            color="C3",
            label="val mIoU",
        )
        ax2.set_ylabel("val mIoU (dashed)", color="C3")
        ax2.set_ylim(0, 1)
    return ax


def compare_zoom(
    image: torch.Tensor, target: torch.Tensor, preds: "dict", window: int = 32
):
    """Two predictions side by side, at full size and zoomed where they differ most.

    Top row: image, target and each prediction, the zoom window outlined. Bottom row: the
    window enlarged (target, each prediction) and an error map — pixels wrong only in the
    first prediction, only in the second, or in both. Returns the figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    (name_a, a), (name_b, b) = list(preds.items())[:2]
    differ = (a != b).float()[None, None]
    counts = torch.nn.functional.avg_pool2d(differ, window, stride=4)[0, 0]
    r, c = divmod(int(counts.argmax()), counts.shape[1])
    y0, x0 = 4 * r, 4 * c
    crop = (slice(y0, y0 + window), slice(x0, x0 + window))
    fig, axes = plt.subplots(2, 4, figsize=(7.0, 4.3))
    top = [
        (_to_hwc(image), "image"),
        (colorize(target), "target"),
        (colorize(a), name_a),
        (colorize(b), name_b),
    ]
    for ax, (img, title) in zip(axes[0], top):
        ax.imshow(img, interpolation="nearest")
        ax.add_patch(
            Rectangle(
                (x0 - 0.5, y0 - 0.5), window, window, fill=False, ec="k", lw=1.2
            )
        )
        ax.set_title(title, fontsize=9)
    err = np.zeros(target.shape + (3,))
    wrong_a, wrong_b = (a != target).numpy(), (b != target).numpy()
    err[:] = 1.0
    err[wrong_a & ~wrong_b] = (0.2, 0.4, 0.9)
    err[wrong_b & ~wrong_a] = (0.9, 0.2, 0.2)
    err[wrong_a & wrong_b] = (0.55, 0.55, 0.55)
    # each zoom sits under the panel it enlarges; the error map takes the image's
    # column
    bottom = [
        (err[crop], "zoom: errors"),
        (colorize(target)[crop], "zoom: target"),
        (colorize(a)[crop], f"zoom: {name_a}"),
        (colorize(b)[crop], f"zoom: {name_b}"),
    ]
    for ax, (img, title) in zip(axes[1], bottom):
        ax.imshow(img, interpolation="nearest")
        ax.set_title(title, fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.legend(
        handles=[
            Patch(fc=(0.2, 0.4, 0.9), label=f"wrong only: {name_a}"),
            Patch(fc=(0.9, 0.2, 0.2), label=f"wrong only: {name_b}"),
            Patch(fc=(0.55, 0.55, 0.55), label="wrong in both"),
        ],
        loc="lower center",
        ncol=3,
        fontsize=8.5,
        frameon=False,
    )
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def atrous_gridding(
    kernel_size: int = 3,
    rates: Sequence[int] = (1, 2, 4),
    layers: Sequence[int] = (1, 2, 3),
):
    """Stacked atrous footprints (one row per depth, one column per rate) on a shared
    colour scale per row, with a colour bar: the number of paths from one output pixel
    to each input pixel; white = never read. Returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(layers),
        len(rates),
        figsize=(7.0, 2.3 * len(layers)),
        squeeze=False,
        layout="constrained",
    )
    cmap = plt.get_cmap("viridis").with_extremes(bad="white")
    for i, n in enumerate(layers):
        prints = [atrous_footprint(kernel_size, r, n) for r in rates]
        vmax = max(int(f.max()) for f in prints)
        side = max(f.shape[0] for f in prints)
        for j, (r, f) in enumerate(zip(rates, prints)):
            ax = axes[i, j]
            pad = (side - f.shape[0]) // 2
            canvas = np.zeros((side, side), dtype=f.dtype)
            canvas[pad : pad + f.shape[0], pad : pad + f.shape[0]] = f
            im = ax.imshow(
                np.ma.masked_equal(canvas, 0),
                cmap=cmap,
                vmin=0.5,
                vmax=vmax + 0.5 if vmax == 1 else vmax,
            )
            ax.add_patch(
                plt.Rectangle(
                    (pad - 0.5, pad - 0.5),
                    f.shape[0],
                    f.shape[0],
                    fill=False,
                    ec="0.4",
                    lw=0.8,
                )
            )
            field = receptive_field([(kernel_size, 1, r)] * n)
            unread = int((f == 0).sum())
            ax.set_title(
                f"rate {r}, {n} layer{'s' if n > 1 else ''}: field {field}\n"
                f"{unread} of {field * field} unread",
                fontsize=9,
            )
            ax.set_xticks([])
            ax.set_yticks([])
        cb = fig.colorbar(im, ax=list(axes[i]), fraction=0.04, pad=0.02, aspect=12)
        cb.set_label("paths", fontsize=8.5)
        cb.ax.tick_params(labelsize=8.5)
        if vmax == 1:
            cb.set_ticks([1])
    return fig


def tokenisation_schemes(crop: int = 32):
    """ViT, SegFormer and Swin cutting the *same* ``crop``×``crop``-pixel region (one
    scale, a scale bar in each panel). Swin: layer l's windows (tinted) and layer l+1's
    windows, shifted by half a window (red), one of which is outlined: it joins pieces
    of four former windows. Returns the figure."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fig, axes = plt.subplots(1, 3, figsize=(7.0, 3.0))

    def grid(ax, step, vs=None, **kw):
        for v in range(0, crop + 1, step) if vs is None else vs:
            ax.plot([0, crop], [v, v], **kw)
            ax.plot([v, v], [0, crop], **kw)

    ax = axes[0]  # ViT: 16×16 patches
    grid(ax, 1, color="0.9", lw=0.3)
    grid(ax, 16, color="k", lw=1.2)
    ax.add_patch(Rectangle((0, 16), 16, 16, color="tab:blue", alpha=0.35))
    ax.add_patch(Rectangle((16, 16), 16, 16, color="tab:orange", alpha=0.35))
    ax.set_title("ViT: disjoint 16×16\npatches (K = S = 16)", fontsize=9)
    ax = axes[1]  # SegFormer stage 1: K=7, S=4, padding 3
    grid(ax, 1, color="0.9", lw=0.3)
    for cx, colour in ((12, "tab:blue"), (16, "tab:orange")):
        ax.add_patch(Rectangle((cx - 3, 16 - 3), 7, 7, color=colour, alpha=0.3))
        ax.add_patch(
            Rectangle((cx - 3, 16 - 3), 7, 7, fill=False, ec=colour, lw=1.6)
        )
    for cy in range(0, crop, 4):
        for cx in range(0, crop, 4):
            ax.plot(cx + 0.5, cy + 0.5, ".", color="k", ms=2.5)
    ax.set_title(
        "SegFormer stage 1: K = 7,\nS = 4 (share K − S = 3 px)", fontsize=9
    )
    ax = axes[2]  # Swin: 4×4-pixel patches, windows of 4×4 patches, shift 2 patches
    tints = ["#cfe0f5", "#d5ecd0", "#fbd9b5", "#e3d5f3"]
    for k, (wy, wx) in enumerate(((0, 0), (0, 16), (16, 0), (16, 16))):
        ax.add_patch(Rectangle((wx, wy), 16, 16, color=tints[k], alpha=0.9, lw=0))
    grid(ax, 4, color="0.6", lw=0.4)
    grid(ax, 16, color="tab:blue", lw=1.6)
    grid(ax, 0, vs=(8, 24), color="tab:red", lw=1.4, ls="--")
    ax.add_patch(Rectangle((8, 8), 16, 16, fill=False, ec="tab:red", lw=2.4))
    ax.set_title(
        "Swin: windows (blue), next\nlayer shifted by 8 px (red)", fontsize=9
    )
    for ax in axes:
        ax.set_xlim(0, crop)
        ax.set_ylim(crop + 3.5, 0)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.plot([1, 9], [crop + 2, crop + 2], color="k", lw=2, clip_on=False)
        ax.text(10, crop + 2, "8 px", va="center", fontsize=8.5)
        for side in ax.spines.values():
            side.set_visible(False)
    fig.tight_layout()
    return fig


def plot_seed_bars(ax, labels: Sequence[str], stats: Sequence, baseline=None):
    """One bar per configuration on ``ax``: every seed as a dot, the mean ± sd as a
    bar with an error line, and ``baseline`` (the all-background score) dashed.

    ``stats[i]`` has ``mean``, ``sd`` and ``values`` (one per seed), as
    :class:`tutorial_lib.experiments.Stat`. Returns the axes.
    """
    import matplotlib.pyplot as plt

    colours = plt.get_cmap("tab10").colors
    for i, stat in enumerate(stats):
        ax.bar(i, stat.mean, width=0.6, color=colours[i % 10], alpha=0.35)
        ax.errorbar(i, stat.mean, yerr=stat.sd, color="black", capsize=4, lw=1)
        ax.scatter(
            [i + d for d in np.linspace(-0.12, 0.12, len(stat.values))],
            stat.values,
            s=14,
            color=colours[i % 10],
            edgecolor="black",
            linewidth=0.5,
            zorder=3,
        )
    # a baseline of 0 (an object class's IoU when everything is background) sits on
    # the axis: no line, no legend entry
    if baseline is not None and baseline > 0:
        ax.axhline(baseline, color="grey", ls="--", lw=1, label="all background")
        ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return ax


def plot_mean_curves(
    ax,
    keys: Sequence,
    curves: Sequence[tuple],
    xlabel: str,
    ylabel: str = "mIoU",
    baseline: Optional[Sequence[float]] = None,
    mark=None,
):
    """Mean ± sd (a band) over the seeds at each of ``keys``, one line per
    ``(label, stats)`` of ``curves`` (``stats[k]`` with ``mean`` and ``sd``);
    ``baseline`` (one value per key) dashed; ``mark`` draws a vertical line (e.g.
    the training size). Returns the axes."""
    import matplotlib.pyplot as plt

    xs = [float(k) for k in keys]
    for i, (label, stats) in enumerate(curves):
        mean = np.array([s.mean for s in stats])
        sd = np.array([s.sd for s in stats])
        colour = plt.get_cmap("tab10").colors[i % 10]
        ax.plot(xs, mean, "o-", color=colour, label=label, ms=4)
        ax.fill_between(xs, mean - sd, mean + sd, color=colour, alpha=0.2)
    if baseline is not None:
        ax.plot(xs, baseline, "--", color="grey", lw=1, label="all background")
    if mark is not None:
        ax.axvline(mark, color="black", lw=0.8, ls=":")
    ax.set_xticks(xs, [str(k) for k in keys])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    return ax


def __getattr__(name: str):
    # Compatibility for chapters written before plot_experiment and
    # plot_metric_curves moved above viz (to tutorial_lib.experiment_plots); remove
    # once no chapter calls them through viz.
    if name in ("plot_experiment", "plot_metric_curves"):
        from . import experiment_plots

        return getattr(experiment_plots, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
