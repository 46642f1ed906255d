"""Figures of the recorded experiments (:mod:`tutorial_lib.experiments`): the
numbers are looked up here and drawn by :mod:`tutorial_lib.viz`, which stays below
what it draws.

``plot_experiment("aspp", [("mIoU", "miou")])`` — one panel per metric, every seed
as a dot, mean ± sd, the all-background baseline dashed;
``plot_metric_curves(configs, "resolution", sizes, "test size (px)")`` — a metric
over a swept key, one line per configuration.
"""

from __future__ import annotations

from typing import Optional, Sequence

from . import experiments as ex
from . import viz

__all__ = ["plot_experiment", "plot_metric_curves"]


def _baseline(metric: str, results, configs: Sequence[str]) -> Optional[float]:
    # scored on the scenes the configurations were scored on (one size, or none)
    size = ex.common_size(configs)
    if size is None:
        return None
    try:
        return ex.baseline(metric, results, size)
    except ValueError:  # no all-background value recorded for this metric
        return None


def plot_experiment(
    experiment: str,
    metrics: Sequence[tuple],
    results=None,
    configs: Optional[Sequence[str]] = None,
    width: float = 7.0,
):
    """One panel per ``(title, metric)``: every seed as a dot, the mean ± sd as a bar
    with an error line, and the all-background score dashed; configurations of
    ``experiment`` (:data:`tutorial_lib.experiments.EXPERIMENTS`, or ``configs``) on
    the x axis. Returns the figure."""
    import matplotlib.pyplot as plt

    if experiment not in ex.EXPERIMENTS:
        raise ValueError(
            f"plot_experiment: expected one of {list(ex.EXPERIMENTS)}, "
            f"got {experiment!r}"
        )
    if not metrics:
        raise ValueError(
            "plot_experiment: expected at least one (title, metric) pair"
        )
    names = list(ex.EXPERIMENTS[experiment].configs if configs is None else configs)
    labels = [ex.CONFIGS[n].label for n in names]
    fig, axes = plt.subplots(1, len(metrics), figsize=(width, 2.9), squeeze=False)
    for ax, (title, metric) in zip(axes[0], metrics):
        stats = [ex.summary(name, metric, results) for name in names]
        viz.plot_seed_bars(ax, labels, stats, _baseline(metric, results, names))
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_metric_curves(
    configs: Sequence[str],
    prefix: str,
    keys: Sequence,
    xlabel: str,
    ylabel: str = "mIoU",
    results=None,
    ax=None,
    mark=None,
):
    """Mean ± sd (band) over the seeds of ``prefix.key`` for each key (e.g.
    ``resolution`` at 32…128 px, or ``trimap`` at band widths 1, 2, 4), one line per
    configuration, the all-background value dashed; ``mark`` draws a vertical line
    (e.g. the training size). Returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.2))
    curves = [
        (
            ex.CONFIGS[name].label,
            [ex.summary(name, f"{prefix}.{k}", results) for k in keys],
        )
        for name in configs
    ]
    baseline = [_baseline(f"{prefix}.{k}", results, configs) for k in keys]
    baseline = None if None in baseline else baseline
    return viz.plot_mean_curves(ax, keys, curves, xlabel, ylabel, baseline, mark)
