"""The drawing kit behind :mod:`tutorial_lib.diagrams`: one visual language, shapes from hooks.

Every diagram is drawn on a matplotlib canvas measured in inches (1 unit = 1 inch at the figure's
size), so a font size written here is the size printed in the book's column. The glyphs:

* rounded box, filled by *kind* (``KINDS``): convolution, attention, linear/MLP, normalisation,
  tokens (reshape/flatten/position), pooling; white for a tensor (input/output);
* trapezoid for resampling: narrowing = downsample, widening = upsample;
* circle for merging: ``+`` sum, ``C`` concatenation, ``×`` matrix product;
* a dashed background for the encoder (blue-grey) and the decoder (rose).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import Circle, FancyBboxPatch, Polygon, Rectangle
from torch import nn

__all__ = ["KINDS", "Diagram", "Canvas", "trace", "fmt_shape"]

#: kind -> (fill, edge, legend label). The same everywhere in the book.
KINDS: Dict[str, Tuple[str, str, str]] = {
    "tensor": ("#ffffff", "#555555", "tensor"),
    "conv": ("#cfe0f5", "#2f5f9e", "convolution"),
    "attention": ("#fbd9b5", "#b85c0f", "attention"),
    "linear": ("#d5ecd0", "#3f7f35", "linear / MLP"),
    "norm": ("#e6e6e6", "#6a6a6a", "normalisation"),
    "tokens": ("#fff1a8", "#8f7700", "reshape / tokens"),
    "pool": ("#f2d4e8", "#9b3f7d", "pooling"),
    "down": ("#e3d5f3", "#6b46a0", "downsample"),
    "up": ("#e3d5f3", "#6b46a0", "upsample"),
    "merge": ("#ffffff", "#333333", "+ sum, C concat"),
}
GROUPS = {
    "encoder": ("#eef2f8", "#7d8da8"),
    "decoder": ("#fbeef0", "#b07c86"),
    "block": ("#f7f7f2", "#9a9a80"),
}
TITLE_PT, SHAPE_PT, NOTE_PT = 8.5, 8.0, 8.0
#: Sizes above are as printed in a 680 px column; the stored PNG is 7.2 in wide (7
#: in plus the inline backend's tight padding) at 100 dpi, shown scaled by 680/720,
#: so every size is drawn this much larger.
FONT_SCALE = 720 / 680
MONO = "DejaVu Sans Mono"

Shape = Any  # a tuple of ints, or a list of such tuples


def _shape_of(out: Any) -> Shape:
    if isinstance(out, torch.Tensor):
        return tuple(int(d) for d in out.shape)
    if isinstance(out, (list, tuple)):
        return [_shape_of(o) for o in out]
    return type(out).__name__


def trace(
    model: nn.Module, inputs: Sequence[Any], names: Sequence[str]
) -> Tuple[Dict[str, Shape], Dict[str, Shape]]:
    """Run ``model(*inputs)`` once under ``no_grad`` with hooks on ``names``.

    Returns ``(outputs, inputs)``: each named module's output shape and first-input shape at its
    *first* call (``""`` is the model itself). Runs on whatever device the inputs are on — the
    diagrams use ``device="meta"``, so paper-sized models cost no memory and no arithmetic.
    """
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        raise ValueError(f"diagrams.trace: no submodule named {missing}")
    outs: Dict[str, Shape] = {}
    ins: Dict[str, Shape] = {}
    handles = []
    for name in names:

        def hook(mod: nn.Module, args: Any, out: Any, name: str = name) -> None:
            if name not in outs:
                outs[name] = _shape_of(out)
                ins[name] = _shape_of(args[0]) if args else None

        handles.append(modules[name].register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
    return outs, ins


def fmt_shape(shape: Shape, batch: bool = False) -> str:
    """``(1, 96, 8, 8) -> "96×8×8"`` (batch dropped): C×H×W for maps, N×C for tokens."""
    if isinstance(shape, list):
        return ", ".join(fmt_shape(s, batch) for s in shape)
    dims = shape if batch else shape[1:]
    return "×".join(str(d) for d in dims)


@dataclass
class Diagram:
    """A drawn figure and the traced shapes written on it (``labels``: module name -> text)."""

    fig: Any
    labels: Dict[str, str] = field(default_factory=dict)
    shapes: Dict[str, Shape] = field(default_factory=dict)

    def texts(self) -> List[str]:
        """Every string drawn on the figure (what a test compares with a shape trace)."""
        return [t.get_text() for ax in self.fig.axes for t in ax.texts] + [
            t.get_text() for t in self.fig.texts
        ]


class Canvas:
    """A figure whose data units are inches; boxes, trapezoids, merges, arrows and groups."""

    def __init__(self, width: float, height: float) -> None:
        self.width, self.height = width, height
        self.fig = plt.figure(figsize=(width, height))
        self.ax = self.fig.add_axes((0, 0, 1, 1))
        self.ax.set_xlim(0, width)
        self.ax.set_ylim(0, height)
        self.ax.set_aspect("equal")
        self.ax.axis("off")
        self.used: List[str] = []

    def _use(self, kind: str) -> None:
        if kind not in self.used:
            self.used.append(kind)

    def text(
        self, x: float, y: float, s: str, size: float = NOTE_PT, **kw: Any
    ) -> None:
        kw.setdefault("ha", "center")
        kw.setdefault("va", "center")
        self.ax.text(x, y, s, fontsize=size * FONT_SCALE, **kw)

    def box(
        self,
        x: float,
        y: float,
        w: float,
        h: float,
        kind: str,
        title: str,
        shape: Optional[str] = None,
    ) -> Tuple[float, float, float, float]:
        """A rounded box centred at ``(x, y)``; the title above the shape line. Returns its bbox."""
        fill, edge, _ = KINDS[kind]
        self._use(kind)
        lw = 1.4 if kind == "tensor" else 1.0
        self.ax.add_patch(
            FancyBboxPatch(
                (x - w / 2, y - h / 2),
                w,
                h,
                boxstyle="round,pad=0,rounding_size=0.06",
                fc=fill,
                ec=edge,
                lw=lw,
                zorder=2,
            )
        )
        if shape is None:
            self.text(x, y, title, TITLE_PT, zorder=3)
        else:
            self.text(x, y + 0.11, title, TITLE_PT, zorder=3, linespacing=1.05)
            self.text(
                x,
                y - h / 2 + 0.12,
                shape,
                SHAPE_PT,
                family=MONO,
                color="#222222",
                zorder=3,
            )
        return (x - w / 2, y - h / 2, x + w / 2, y + h / 2)

    def resample(
        self,
        x: float,
        y: float,
        w: float,
        h: float,
        up: bool,
        title: str,
        shape: Optional[str] = None,
        vertical: bool = False,
    ) -> Tuple[float, float, float, float]:
        """A trapezoid: narrowing in the flow direction (down) or widening (up)."""
        kind = "up" if up else "down"
        fill, edge, _ = KINDS[kind]
        self._use("down")
        # half-heights at entry and exit, as a fraction of h
        a, b = (0.28, 0.5) if up else (0.5, 0.28)
        if vertical:  # flow downwards: entry at the top
            pts = [
                (x - a * w, y + h / 2),
                (x + a * w, y + h / 2),
                (x + b * w, y - h / 2),
                (x - b * w, y - h / 2),
            ]
        else:
            pts = [
                (x - w / 2, y - a * h),
                (x - w / 2, y + a * h),
                (x + w / 2, y + b * h),
                (x + w / 2, y - b * h),
            ]
        self.ax.add_patch(
            Polygon(pts, closed=True, fc=fill, ec=edge, lw=1.0, zorder=2)
        )
        if shape is None:
            self.text(x, y, title, TITLE_PT, zorder=3)
        else:
            self.text(x, y + 0.09, title, TITLE_PT, zorder=3)
            self.text(x, y - 0.11, shape, SHAPE_PT, family=MONO, zorder=3)
        return (x - w / 2, y - h / 2, x + w / 2, y + h / 2)

    def merge(
        self, x: float, y: float, op: str = "+", r: float = 0.11
    ) -> Tuple[float, float, float, float]:
        """A circle with ``+`` (sum), ``C`` (concat) or ``×`` (matrix product)."""
        self._use("merge")
        self.ax.add_patch(
            Circle((x, y), r, fc="white", ec="#333333", lw=1.1, zorder=2)
        )
        self.text(x, y, op, 9, zorder=3, weight="bold")
        return (x - r, y - r, x + r, y + r)

    def arrow(
        self,
        points: Sequence[Tuple[float, float]],
        label: Optional[str] = None,
        label_at: float = 0.5,
        color: str = "#333333",
        offset: Tuple[float, float] = (0, 0.09),
        mono: bool = True,
    ) -> None:
        """A polyline with an arrow head at its last point; an optional label by one segment."""
        pts = list(points)
        for p, q in zip(pts[:-2], pts[1:-1]):
            self.ax.plot(
                [p[0], q[0]],
                [p[1], q[1]],
                color=color,
                lw=1.0,
                zorder=1,
                solid_capstyle="butt",
            )
        self.ax.annotate(
            "",
            xy=pts[-1],
            xytext=pts[-2],
            zorder=1,
            arrowprops=dict(
                arrowstyle="-|>",
                color=color,
                lw=1.0,
                mutation_scale=9,
                shrinkA=0,
                shrinkB=0,
            ),
        )
        if label is not None:
            i = min(int(label_at * (len(pts) - 1)), len(pts) - 2)
            (x0, y0), (x1, y1) = pts[i], pts[i + 1]
            self.text(
                (x0 + x1) / 2 + offset[0],
                (y0 + y1) / 2 + offset[1],
                label,
                SHAPE_PT,
                family=MONO if mono else None,
                zorder=3,
                bbox=dict(fc="white", ec="none", pad=0.5, alpha=0.9),
            )

    def group(
        self,
        x0: float,
        y0: float,
        x1: float,
        y1: float,
        label: str,
        kind: str = "encoder",
        label_pos: str = "top",
    ) -> None:
        fill, edge = GROUPS[kind]
        self.ax.add_patch(
            FancyBboxPatch(
                (x0, y0),
                x1 - x0,
                y1 - y0,
                boxstyle="round,pad=0,rounding_size=0.1",
                fc=fill,
                ec=edge,
                lw=1.0,
                ls=(0, (4, 2)),
                zorder=0,
            )
        )
        y = y1 - 0.13 if label_pos == "top" else y0 + 0.13
        self.text(
            x0 + 0.1,
            y,
            label,
            TITLE_PT,
            ha="left",
            color=edge,
            weight="bold",
            zorder=1,
        )

    def legend(
        self,
        y: float = 0.2,
        note: Optional[str] = None,
        kinds: Optional[Sequence[str]] = None,
    ) -> None:
        """Rows of glyph samples (the kinds this diagram used, in ``KINDS`` order) and a note.

        Wraps to more rows below ``y`` when needed, growing the figure downwards.
        """
        kinds = [k for k in KINDS if k in (kinds or self.used) and k != "up"]
        items = [(k, "resample" if k == "down" else KINDS[k][2]) for k in kinds]
        widths = [0.24 + 0.066 * len(label) + 0.16 for _, label in items]
        rows: List[List[int]] = [[]]
        x = 0.15
        for i, w in enumerate(widths):
            if x + w > self.width - 0.1 and rows[-1]:
                rows.append([])
                x = 0.15
            rows[-1].append(i)
            x += w
        note_w = 0.066 * len(note) + 0.2 if note else 0.0
        if note and x + note_w > self.width - 0.1:
            rows.append([])
        step = 0.24
        low = y - step * (len(rows) - 1) - 0.14
        if low < 0:
            self.ax.set_ylim(low, self.height)
            self.fig.set_size_inches(self.width, self.height - low)
        for r, row in enumerate(rows):
            yy, x = y - step * r, 0.15
            for i in row:
                k, label = items[i]
                fill, edge, _ = KINDS[k]
                if k == "merge":
                    self.ax.add_patch(
                        Circle((x + 0.09, yy), 0.075, fc=fill, ec=edge, lw=0.9)
                    )
                elif k == "down":
                    self.ax.add_patch(
                        Polygon(
                            [
                                (x, yy - 0.09),
                                (x, yy + 0.09),
                                (x + 0.18, yy + 0.05),
                                (x + 0.18, yy - 0.05),
                            ],
                            fc=fill,
                            ec=edge,
                            lw=0.9,
                        )
                    )
                else:
                    self.ax.add_patch(
                        Rectangle(
                            (x, yy - 0.07), 0.18, 0.14, fc=fill, ec=edge, lw=0.9
                        )
                    )
                self.text(x + 0.24, yy, label, NOTE_PT, ha="left")
                x += widths[i]
        if note:
            self.text(
                self.width - 0.1,
                y - step * (len(rows) - 1),
                note,
                NOTE_PT,
                ha="right",
                color="#444444",
            )

    def done(self, labels: Dict[str, str], shapes: Dict[str, Shape]) -> Diagram:
        return Diagram(self.fig, labels, shapes)


def on_meta(factory, **kwargs):
    """``factory(**kwargs)`` built on the ``meta`` device (no memory, no arithmetic),
    in eval mode."""
    with torch.device("meta"):
        return factory(**kwargs).eval()


def row(c: Canvas, y: float, xs, boxes, h: float = 0.62, w: float = 0.84) -> None:
    """Boxes ``(kind, title, label[, width])`` at ``xs`` on one row, joined by arrows."""
    prev, w0 = None, w
    for x, item in zip(xs, boxes):
        kind, title, label = item[:3]
        w = item[3] if len(item) > 3 else w0
        if kind in ("up", "down"):
            bb = c.resample(x, y, w, h, kind == "up", title, label)
        elif kind == "merge":
            bb = c.merge(x, y, title)
        else:
            bb = c.box(x, y, w, h, kind, title, label)
        if prev is not None:
            c.arrow([(prev[2], y), (bb[0], y)])
        prev = bb
