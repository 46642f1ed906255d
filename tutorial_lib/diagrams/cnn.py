"""Diagrams of the convolution chapters (01–03): FCN, atrous kernels, separable
convolution. DeepLab's (ASPP, DeepLabV3+, aligned Xception) are in
:mod:`tutorial_lib.diagrams.deeplab`.

Shapes come from forward hooks on the library's modules (on ``meta``); the atrous taps come
from running :class:`~tutorial_lib.layers.atrous.AtrousConv2d` on an impulse.
"""

from __future__ import annotations

from typing import Dict, Sequence

import torch
from matplotlib.patches import Rectangle

from ._draw import KINDS, Canvas, Diagram, fmt_shape, on_meta, row, trace

__all__ = ["fcn", "dilated_kernel", "depthwise_separable"]


def fcn(size: int = 64, num_classes: int = 6) -> Diagram:
    """Chapter 01's baseline (``tiny_fcn``): strided conv stages, a 1×1 classifier, bilinear ↑."""
    from ..models import tiny_fcn

    m = on_meta(tiny_fcn, num_classes=num_classes)
    n_st = len(m.config.widths)
    names = [f"features.{2 * i + 1}" for i in range(n_st)] + ["classifier", ""]
    out, _ = trace(m, [torch.zeros(1, 3, size, size, device="meta")], names)
    lab = {n: fmt_shape(out[n]) for n in names}
    c = Canvas(7.0, 2.2)
    xs = [0.55 + 0.985 * i for i in range(n_st + 4)]
    c.group(
        xs[1] - 0.5,
        0.62,
        xs[n_st] + 0.5,
        2.12,
        f"encoder: output stride {m.output_stride}",
        "encoder",
    )
    c.group(
        xs[n_st + 1] - 0.5,
        0.62,
        xs[n_st + 2] + 0.5,
        2.12,
        "classify, upsample",
        "decoder",
    )
    row(
        c,
        1.3,
        xs,
        [("tensor", "image", f"3×{size}×{size}")]
        + [
            ("conv", "conv 3×3 s2\n+ conv 3×3", lab[f"features.{2 * i + 1}"])
            for i in range(n_st)
        ]
        + [
            ("conv", "1×1 conv\n(classes)", lab["classifier"]),
            ("up", f"bilinear\n↑{m.output_stride}", None),
            ("tensor", "logits", lab[""]),
        ],
        w=0.9,
        h=0.72,
    )
    c.legend(0.2, note="each conv but the classifier: + BN + ReLU; batch omitted")
    return c.done(lab, out)


def dilated_kernel(rates: Sequence[int] = (1, 2, 4), grid: int = 11) -> Diagram:
    """A 3×3 kernel at each rate on a pixel grid: the 9 taps (dark) and the span they cover.

    The taps are where :class:`~tutorial_lib.layers.atrous.AtrousConv2d` (all-one weights) responds to an impulse at the
    centre, i.e. computed by the library's layer, not drawn from a formula.
    """
    from ..layers.atrous import AtrousConv2d, effective_kernel_size

    c = Canvas(7.0, 2.75)
    cell = 1.9 / grid
    labels: Dict[str, str] = {}
    taps_by_rate = {}
    for k, r in enumerate(rates):
        conv = AtrousConv2d(1, 1, 3, rate=r, bias=False)
        with torch.no_grad():
            conv.weight.fill_(1.0)
            x = torch.zeros(1, 1, grid, grid)
            x[0, 0, grid // 2, grid // 2] = 1.0
            resp = conv(x)[0, 0]
        taps = [(int(i), int(j)) for i, j in torch.nonzero(resp)]
        taps_by_rate[r] = taps
        span = effective_kernel_size(3, r)
        x0, y0 = 0.2 + k * 2.3, 0.35
        fill, edge, _ = KINDS["conv"]
        lo = grid // 2 - span // 2
        for i in range(grid):
            for j in range(grid):
                inside = lo <= i < lo + span and lo <= j < lo + span
                c.ax.add_patch(
                    Rectangle(
                        (x0 + j * cell, y0 + (grid - 1 - i) * cell),
                        cell,
                        cell,
                        fc=fill if inside else "white",
                        ec="#bbbbbb",
                        lw=0.5,
                    )
                )
        for i, j in taps:
            c.ax.add_patch(
                Rectangle(
                    (x0 + j * cell, y0 + (grid - 1 - i) * cell),
                    cell,
                    cell,
                    fc=edge,
                    ec="#1b3a66",
                    lw=0.6,
                )
            )
        labels[f"rate {r}"] = f"span {span}×{span}"
        c.text(
            x0 + grid * cell / 2,
            y0 + grid * cell + 0.2,
            f"rate {r}: 9 taps, span {span}×{span}",
            8.5,
        )
    c.text(
        3.5,
        0.15,
        "dark: the 3×3 weights' input pixels; light: the region they span (same 9 "
        "weights)",
        8,
        color="#444444",
    )
    d = c.done(labels, {})
    d.taps = taps_by_rate  # type: ignore[attr-defined]
    return d


def depthwise_separable(
    in_chans: int = 3, out_chans: int = 4, size: int = 8, kernel_size: int = 3
) -> Diagram:
    """Depthwise (filtering: one k×k filter per channel) then pointwise (combining: 1×1 across channels)."""
    from ..layers.separable import SeparableConv2d

    with torch.device("meta"):
        m = SeparableConv2d(in_chans, out_chans, kernel_size).eval()
    out, ins = trace(
        m,
        [torch.zeros(1, in_chans, size, size, device="meta")],
        ["dwconv", "pwconv"],
    )
    lab = {n: fmt_shape(out[n]) for n in out}
    lab["dwconv.weight"] = "×".join(str(d) for d in m.dwconv.weight.shape)
    lab["pwconv.weight"] = "×".join(str(d) for d in m.pwconv.weight.shape)
    colors = ["#d9534f", "#5cb85c", "#428bca", "#f0ad4e", "#9b59b6", "#777777"]
    c = Canvas(7.0, 3.45)

    def stack(
        x: float, y: float, n: int, cols, title: str, label: str, s: float = 0.5
    ) -> list:
        centers = []
        for i in range(n):
            yy = y + (n - 1 - i) * 0.56 - (n - 1) * 0.28
            col = cols[i]
            # a mixed channel: stripes of every input colour
            if isinstance(col, list):
                for k, cc in enumerate(col):
                    c.ax.add_patch(
                        Rectangle(
                            (x - s / 2 + k * s / len(col), yy - s / 2),
                            s / len(col),
                            s,
                            fc=cc,
                            ec="none",
                            alpha=0.75,
                        )
                    )
                c.ax.add_patch(
                    Rectangle(
                        (x - s / 2, yy - s / 2),
                        s,
                        s,
                        fc="none",
                        ec="#333333",
                        lw=0.8,
                    )
                )
            else:
                c.ax.add_patch(
                    Rectangle(
                        (x - s / 2, yy - s / 2),
                        s,
                        s,
                        fc=col,
                        ec="#333333",
                        lw=0.8,
                        alpha=0.8,
                    )
                )
            centers.append((x, yy))
        c.text(x, 3.25, title, 8.5)
        c.text(x, 3.05, label, 8, family="DejaVu Sans Mono")
        return centers

    cin = [colors[i % len(colors)] for i in range(in_chans)]
    a = stack(0.55, 1.8, in_chans, cin, "input", fmt_shape(ins["dwconv"]))
    f = stack(
        1.8,
        1.8,
        in_chans,
        cin,
        f"{kernel_size}×{kernel_size} filters",
        lab["dwconv.weight"],
        s=0.3,
    )
    b = stack(3.05, 1.8, in_chans, cin, "depthwise out", lab["dwconv"])
    for p, q, r in zip(a, f, b):
        c.arrow([(p[0] + 0.27, p[1]), (q[0] - 0.17, q[1])])
        c.arrow([(q[0] + 0.17, q[1]), (r[0] - 0.27, r[1])])
    o = stack(
        5.6, 1.8, out_chans, [cin] * out_chans, "pointwise out", lab["pwconv"]
    )
    for p in b:
        for q in o:
            c.ax.plot(
                [p[0] + 0.27, q[0] - 0.27], [p[1], q[1]], color="#555555", lw=0.7
            )
    c.text(4.33, 3.25, "1×1 weights", 8.5)
    c.text(4.33, 3.05, lab["pwconv.weight"], 8, family="DejaVu Sans Mono")
    c.text(1.8, 0.28, "depthwise: filtering, space only,\neach channel alone", 8.5)
    c.text(
        4.9,
        0.28,
        "pointwise: combining, channels only,\nevery output mixes every input",
        8.5,
    )
    return c.done(lab, out)


# SegFormer's patch-embedding diagram moved to .segformer; the old path still works.
from .segformer import overlap_patch_embed  # noqa: E402, F401

# DeepLab's diagrams moved to .deeplab; the old import path still works.
from .deeplab import aspp, deeplabv3plus, xception_flows  # noqa: E402, F401
