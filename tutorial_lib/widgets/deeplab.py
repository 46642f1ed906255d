"""Explorers for the DeepLabV3+ part: where an atrous kernel samples, and what a
stack of them sees.

:func:`atrous_footprint` computes, for one output pixel, how many paths through
``layers`` stacked k×k convolutions with rate ``r`` reach each input pixel (one
layer: the k×k sampled positions). :func:`plot_atrous` draws it;
:func:`plot_atrous_grid` is the static figure used in the book;
:func:`atrous_explorer` is the interactive version (ipywidgets), which redraws the
same plot.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..layers.atrous import atrous_footprint, receptive_field

__all__ = ["atrous_footprint", "plot_atrous", "plot_atrous_grid", "atrous_explorer"]


def plot_atrous(
    kernel_size: int = 3,
    rate: int = 2,
    layers: int = 1,
    ax=None,
    title: bool = True,
):
    """Draw :func:`atrous_footprint` on its pixel grid; returns the axis."""
    import matplotlib.pyplot as plt

    footprint = atrous_footprint(kernel_size, rate, layers)
    if ax is None:
        _, ax = plt.subplots(figsize=(3.2, 3.2))
    size = footprint.shape[0]
    shown = np.ma.masked_equal(footprint, 0)
    ax.imshow(np.zeros_like(footprint), cmap="Greys", vmin=0, vmax=1)
    ax.imshow(shown, cmap="viridis", vmin=0, vmax=max(1, footprint.max()))
    ax.set_xticks(np.arange(-0.5, size, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, size, 1), minor=True)
    ax.grid(which="minor", color="0.85", linewidth=0.4 if size < 40 else 0)
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    if title:
        field = receptive_field([(kernel_size, 1, rate)] * layers)
        unread = int((footprint == 0).sum())
        ax.set_title(
            f"k={kernel_size}, r={rate}, {layers} "
            f"layer{'s' if layers > 1 else ''}\n"
            f"field {field}×{field}, {unread} pixels unread",
            fontsize=9,
        )
    return ax


def plot_atrous_grid(
    kernel_size: int = 3,
    rates: Sequence[int] = (1, 2, 4),
    layers: Sequence[int] = (1, 2, 3),
):
    """The static twin of the explorer: one panel per (layers, rate); returns the
    figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(layers),
        len(rates),
        figsize=(2.6 * len(rates), 2.7 * len(layers)),
        squeeze=False,
    )
    for i, n in enumerate(layers):
        for j, r in enumerate(rates):
            plot_atrous(kernel_size, r, n, ax=axes[i, j])
    fig.tight_layout()
    return fig


def atrous_explorer(
    kernel_size: int = 3, rate: int = 2, layers: int = 1, max_rate: int = 8
):
    """Sliders for kernel size, rate and number of stacked layers → the sampled
    positions."""
    import io

    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import Image

    k = w.SelectionSlider(
        options=[1, 3, 5, 7], value=kernel_size, description="kernel k"
    )
    r = w.IntSlider(value=rate, min=1, max=max_rate, description="rate r")
    n = w.IntSlider(value=layers, min=1, max=4, description="layers")
    out = w.Output()

    def redraw(_: Optional[dict] = None) -> None:
        # Write the PNG into the Output widget's state (``with out: plt.show()``
        # needs a front end; without one, e.g. under nbval, the figure would leak
        # into the cell's own output).
        fig, ax = plt.subplots(figsize=(3.6, 3.6))
        plot_atrous(k.value, r.value, n.value, ax=ax)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", bbox_inches="tight")
        plt.close(fig)
        out.outputs = ()
        out.append_display_data(Image(data=buffer.getvalue(), format="png"))

    for slider in (k, r, n):
        slider.observe(redraw, names="value")
    redraw()
    return w.HBox([w.VBox([k, r, n]), out])
