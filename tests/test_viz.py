"""The plotting helpers (``tutorial_lib.viz``) and the experiment figures drawn with them
(``tutorial_lib.experiment_plots``); ``viz`` stays below what it draws."""

from __future__ import annotations

import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from tutorial_lib import viz  # noqa: E402


def test_viz_figures_for_the_deeplab_chapters():
    target = torch.zeros(64, 64, dtype=torch.long)
    a, b = target.clone(), target.clone()
    b[40:50, 10:20] = 1  # the two predictions differ only here
    fig = viz.compare_zoom(
        torch.rand(3, 64, 64), target, {"a": a, "b": b}, window=16
    )
    zoom = fig.axes[0].patches[0]  # the window outlined on the image
    x0, y0 = zoom.get_x() + 0.5, zoom.get_y() + 0.5
    assert 40 - 16 < y0 <= 49 and 10 - 16 < x0 <= 19
    # each zoom sits under the panel it enlarges and says which one
    titles = [ax.get_title() for ax in fig.axes[:8]]
    assert titles[2:4] == ["a", "b"] and titles[6:8] == ["zoom: a", "zoom: b"]
    plt.close(fig)
    fig = viz.atrous_gridding(rates=(1, 2), layers=(1, 3))
    assert len(fig.axes) == 2 * 2 + 2  # one colour bar per row
    plt.close(fig)
    fig = viz.tokenisation_schemes()
    assert len(fig.axes) == 3
    plt.close(fig)


def test_show_batch_fits_the_column():
    images, masks = (
        torch.rand(6, 3, 16, 16),
        torch.zeros(6, 16, 16, dtype=torch.long),
    )
    fig = viz.show_batch(images, masks, width=7)
    assert fig.get_size_inches()[0] == pytest.approx(7.0)
    plt.close(fig)
    fig = viz.show_batch(images, masks)  # the default is unchanged: 2 in a panel
    assert fig.get_size_inches()[0] == pytest.approx(12.0)
    plt.close(fig)


def test_viz_imports_nothing_above_it():
    """Importing viz loads neither the experiments nor the widgets (it draws what it is
    given; tutorial_lib.experiment_plots looks results up and calls it)."""
    code = (
        "import sys, tutorial_lib.viz; "
        "print(sorted(m for m in sys.modules if m.startswith("
        "('tutorial_lib.experiments', 'tutorial_lib.widgets', 'tutorial_lib.compare', "
        "'tutorial_lib.train'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


class _Stat:
    def __init__(self, values):
        self.values = tuple(values)
        self.mean = sum(values) / len(values)
        self.sd = 0.01


def test_seed_bars_and_mean_curves_draw_what_they_are_given():
    fig, (a, b) = plt.subplots(1, 2)
    viz.plot_seed_bars(a, ["x", "y"], [_Stat([0.5, 0.6]), _Stat([0.7, 0.8])], 0.2)
    assert len(a.patches) == 2 and [t.get_text() for t in a.get_xticklabels()] == [
        "x",
        "y",
    ]
    assert a.get_legend() is not None  # the baseline is labelled
    viz.plot_mean_curves(
        b, [32, 64], [("m", [_Stat([0.1]), _Stat([0.3])])], "size", baseline=[0, 0]
    )
    assert [line.get_label() for line in b.lines] == ["m", "all background"]
    plt.close(fig)


def test_experiment_plots_from_the_record():
    from tutorial_lib import experiment_plots, experiments

    name = next(iter(experiments.EXPERIMENTS))
    fig = experiment_plots.plot_experiment(name, [("mIoU", "miou")])
    assert len(fig.axes) == 1
    plt.close(fig)
    # chapters written before the move still reach it through viz
    assert viz.plot_experiment is experiment_plots.plot_experiment
    with pytest.raises(ValueError, match="expected one of"):
        experiment_plots.plot_experiment("no such experiment", [("mIoU", "miou")])


def test_label_colours_follow_the_paint() -> None:
    # a class painted in one colour is labelled in that colour (nearest paint row);
    # discs and rings share their paint, so their labels take its two rows apart
    from tutorial_lib.data import _CLASS_COLOURS, _PALETTE, CLASS_NAMES
    import numpy as np

    from tutorial_lib.viz import PALETTE

    nearest = {
        name: int(np.argmin(np.linalg.norm(_PALETTE - PALETTE[k] / 255.0, axis=1)))
        for k, name in enumerate(CLASS_NAMES)
        if k
    }
    for name, rows in _CLASS_COLOURS.items():
        assert nearest[name] in rows, (name, nearest[name], rows)
    assert nearest["disc"] != nearest["ring"]
