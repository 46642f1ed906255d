"""Diagrams of DeepLab (chapters 04–05): ASPP, DeepLabV3+ and the aligned Xception.

Shapes come from forward hooks on the library's modules (on ``meta``).
"""

from __future__ import annotations

from typing import Sequence

import torch
from matplotlib.patches import Rectangle

from ._draw import Canvas, Diagram, fmt_shape, on_meta, row, trace

__all__ = ["aspp", "deeplabv3plus", "xception_flows"]


def aspp(
    in_chans: int = 2048,
    out_chans: int = 256,
    rates: Sequence[int] = (6, 12, 18),
    size: int = 32,
) -> Diagram:
    """ASPP (DeepLabV3 §3.3): 1×1 conv, three 3×3 atrous convs, image pooling; concat; 1×1 conv."""
    from ..layers.aspp import ASPP

    with torch.device("meta"):
        m = ASPP(in_chans, out_chans, rates).eval()
    names = [f"branches.{i}" for i in range(len(rates) + 1)] + ["pool", "proj", ""]
    out, ins = trace(
        m, [torch.zeros(1, in_chans, size, size, device="meta")], names
    )
    lab = {n: fmt_shape(out[n]) for n in names}
    lab["concat"] = fmt_shape(ins["proj"])
    n = len(rates) + 2
    c = Canvas(7.0, 0.55 * n + 0.62)
    ys = [0.8 + 0.55 * (n - 1 - i) for i in range(n)]
    ym = (ys[0] + ys[-1]) / 2
    c.box(0.65, ym, 1.0, 0.6, "tensor", "features", fmt_shape(ins[""]))
    titles = (
        ["1×1 conv"]
        + [f"3×3 conv, rate {r}" for r in rates]
        + ["image pooling, 1×1, ↑"]
    )
    for i, (y, t) in enumerate(zip(ys, titles)):
        name = names[i] if i < n - 1 else "pool"
        c.arrow([(1.15, ym), (1.45, ym), (1.45, y), (1.75, y)])
        c.box(3.3, y, 3.1, 0.44, "pool" if name == "pool" else "conv", "")
        c.text(1.9, y, t, 8.5, ha="left")
        c.text(4.75, y, lab[name], 8, family="DejaVu Sans Mono", ha="right")
        c.arrow(
            [(4.85, y), (5.1, y), (5.1, ym), (5.18, ym)]
            if y != ym
            else [(4.85, y), (5.18, y)]
        )
    c.merge(5.3, ym, "C")
    c.text(5.2, ym - 0.45, lab["concat"], 8, family="DejaVu Sans Mono", ha="left")
    c.arrow([(5.41, ym), (5.75, ym)])
    c.box(6.3, ym, 1.0, 0.6, "conv", "1×1 conv", lab["proj"])
    c.legend(0.25, note="each conv: + BN + ReLU; batch omitted")
    return c.done(lab, out)


def deeplabv3plus(
    size: int = 512, num_classes: int = 21, output_stride: int = 16
) -> Diagram:
    """DeepLabV3+ (Chen et al., 2018, Fig. 2): atrous Xception + ASPP encoder, a simple decoder.

    Traced in ``deeplabv3plus_xception65`` on ``meta`` at ``size`` × ``size``.
    """
    from ..models import deeplabv3plus_xception65

    m = on_meta(
        deeplabv3plus_xception65,
        num_classes=num_classes,
        output_stride=output_stride,
    )
    names = ["backbone", "aspp", "decoder.proj", "decoder.fuse", "classifier", ""]
    out, ins = trace(m, [torch.zeros(1, 3, size, size, device="meta")], names)
    lab = {n: fmt_shape(out[n]) for n in names}
    lab["concat"] = fmt_shape(ins["decoder.fuse"])
    feat, low = (fmt_shape(s) for s in out["backbone"])
    # "×4": to the stride-4 size
    up1 = round(out["decoder.proj"][-1] / out["aspp"][-1])
    up2 = round(out[""][-1] / out["classifier"][-1])
    c = Canvas(7.0, 4.15)
    c.group(
        0.1, 2.78, 4.45, 4.05, f"encoder (output stride {output_stride})", "encoder"
    )
    c.group(0.1, 0.58, 6.9, 2.68, "decoder", "decoder", "bottom")
    y1, y2 = 3.3, 1.45
    row(
        c,
        y1,
        [0.6, 1.95, 3.55],
        [
            ("tensor", "image", f"3×{size}×{size}", 0.85),
            ("conv", "DCNN: aligned\nXception-65", feat, 1.2),
            ("conv", "ASPP\n(1×1, 3 atrous, pool)", lab["aspp"], 1.4),
        ],
        h=0.72,
    )
    c.box(6.3, y1, 1.0, 0.72, "tensor", "prediction", lab[""])
    # low-level features
    c.arrow(
        [(1.95, y1 - 0.36), (1.95, y2 + 0.3)],
        f"low-level\n{low}",
        offset=(0.0, 0.05),
    )
    c.resample(3.55, 2.25, 0.8, 0.45, True, f"↑{up1}", vertical=True)
    c.arrow([(3.55, y1 - 0.36), (3.55, 2.48)])
    c.arrow([(3.55, 2.02), (3.55, y2 + 0.11)])
    row(
        c,
        y2,
        [1.95, 3.55, 4.55],
        [
            ("conv", "1×1 conv", lab["decoder.proj"], 1.1),
            ("merge", "C", None),
            ("conv", "3×3 convs", lab["decoder.fuse"], 1.05),
        ],
        h=0.6,
    )
    c.text(3.55, y2 - 0.3, lab["concat"], 8, family="DejaVu Sans Mono")
    c.arrow([(5.08, y2), (5.8, y2)])
    c.box(6.3, y2, 1.0, 0.6, "conv", "1×1 conv", lab["classifier"])
    # drawn for upward flow
    c.resample(6.3, 2.4, 0.8, 0.42, False, f"↑{up2}", vertical=True)
    c.arrow([(6.3, y2 + 0.3), (6.3, 2.19)])
    c.arrow([(6.3, 2.61), (6.3, y1 - 0.36)])
    c.legend(0.25, note="each conv but the classifier: + BN + ReLU; batch omitted")
    d = c.done(lab, out)
    d.labels["backbone"] = f"{feat}, {low}"
    return d


def xception_flows(size: int = 512, output_stride: int = 16) -> Diagram:
    """Aligned Xception-65 (DeepLabV3+ Fig. 4): entry, middle (×16) and exit flows, traced at ``size``."""
    from ..models import xception65

    m = on_meta(xception65, output_stride=output_stride)
    ne, nm = len(m.entry_flow), len(m.middle_flow)
    low = f"entry_flow.{m.config.low_level_unit}.convs.1"  # DeepLabV3+'s low-level features
    names = (
        ["stem"]
        + [f"entry_flow.{i}.convs.2" for i in range(ne)]
        + ["middle_flow.0", "middle_flow"]
        + ["exit_flow.0", "exit_flow.1", low]
    )
    out, _ = trace(m, [torch.zeros(1, 3, size, size, device="meta")], names)
    lab = {n: fmt_shape(out[n]) for n in names}

    def unit(block, skip: str) -> str:
        w = "-".join(str(cv.out_chans) for cv in block.convs)
        last = block.convs[2].dwconv
        s, r = last.stride[0], last.dilation[0]
        step = f"s{s}" if s > 1 else (f"rate {r}" if r > 1 else "")
        return f"3 sep. conv {w}\n" + ", ".join(t for t in (step, skip) if t)

    c = Canvas(7.0, 4.75)
    cols = [
        (0.1, 2.4, "entry flow"),
        (2.5, 4.65, "middle flow"),
        (4.75, 6.9, "exit flow"),
    ]
    for x0, x1, t in cols:
        c.group(x0, 0.45, x1, 4.65, t, "encoder")
    ye = [3.95 - 0.72 * i for i in range(ne + 2)]
    boxes = [
        ("tensor", "image", f"3×{size}×{size}"),
        ("conv", "conv 3×3 s2, 32\nconv 3×3, 64", lab["stem"]),
    ] + [
        (
            "conv",
            unit(m.entry_flow[i], "+ 1×1 conv skip"),
            lab[f"entry_flow.{i}.convs.2"],
        )
        for i in range(ne)
    ]
    prev = None
    for y, (k, t, l) in zip(ye, boxes):
        bb = c.box(1.25, y, 2.0, 0.6, k, t, l)
        if prev is not None:
            c.arrow([(1.25, prev[1]), (1.25, bb[3])])
        prev = bb
    (
        c.arrow([(2.25, ye[-1]), (2.6, ye[-1]), (2.6, 3.3), (2.65, 3.3)])
        if False
        else None
    )
    # middle: one unit, repeated
    c.ax.add_patch(
        Rectangle(
            (2.65, 2.2), 1.85, 1.2, fc="none", ec="#2f5f9e", lw=0.8, ls=(0, (2, 2))
        )
    )
    bm = c.box(
        3.57,
        2.95,
        1.7,
        0.6,
        "conv",
        unit(m.middle_flow[0], "+ identity"),
        lab["middle_flow.0"],
    )
    c.text(3.57, 2.4, f"repeated {nm} times", 8.5, weight="bold")
    c.text(
        3.57,
        1.8,
        f"middle flow out:\n{lab['middle_flow']}",
        8,
    )
    c.arrow([(2.25, ye[-1]), (2.45, ye[-1]), (2.45, 2.95), (bm[0], 2.95)])
    be = [
        c.box(
            5.82,
            3.3,
            1.95,
            0.78,
            "conv",
            # Xception strides here; DeepLab keeps stride 1 below output stride 32
            unit(m.exit_flow[0], "+ 1×1 conv skip")
            + (
                "\ns1 (Xception: s2)"
                if m.exit_flow[0].convs[2].dwconv.stride[0] == 1
                else ""
            ),
            lab["exit_flow.0"],
        ),
        c.box(
            5.82,
            2.35,
            1.95,
            0.6,
            "conv",
            unit(m.exit_flow[1], "no skip"),
            lab["exit_flow.1"],
        ),
    ]
    c.arrow([(bm[2], 2.95), (4.7, 2.95), (4.7, 3.3), (be[0][0], 3.3)])
    c.arrow([(5.82, be[0][1]), (5.82, be[1][3])])
    c.text(5.82, 1.5, "features for ASPP", 8.5)
    c.arrow([(5.82, be[1][1]), (5.82, 1.65)])
    c.text(
        3.57,
        1.0,
        "DeepLabV3+ low-level features:\nentry unit "
        f"{m.config.low_level_unit + 1}, "
        f"after conv 2\n{lab[low]}",
        8,
        color="#444444",
    )
    c.legend(0.25, note=f"output stride {output_stride}; ReLU, BN omitted")
    return c.done(lab, out)
