"""Data for the book: procedurally generated scenes, a real photograph, and a folder
loader.

* :class:`SyntheticScenes` renders random vector scenes at any resolution, so the
  same scene can be seen at 64, 128 or 256 pixels (later chapters test resolution
  robustness with it). The scenes are designed so that each mechanism of the book
  has something to do: objects at three scales (ASPP), wires narrower than a
  feature cell and anti-aliased outlines (output stride, decoder), and rings that
  share the colours of discs, so that only context a radius away (the hole) tells
  them apart (receptive field, attention).
* :func:`sample_image` returns a real photograph that ships with matplotlib, for
  patching and attention demos without a download.
* :class:`SegmentationFolder` reads the common "images + PNG masks" layouts (Pascal
  VOC, ADE20K), so assignments can train on real data in Colab.
"""

from __future__ import annotations

import math
import pathlib
from dataclasses import dataclass, replace
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = [
    "CLASS_NAMES",
    "NUM_CLASSES",
    "IGNORE_INDEX",
    "SceneObject",
    "Scene",
    "make_scene",
    "make_wide_scene",
    "same_scale_scenes",
    "render_scene",
    "render_scale_map",
    "SCALES",
    "SCALE_NAMES",
    "WIRE_HALF_WIDTH",
    "SyntheticScenes",
    "standard_splits",
    "sample_image",
    "SegmentationFolder",
]

#: Class names of :class:`SyntheticScenes`; index = class id.
CLASS_NAMES: Tuple[str, ...] = (
    "background",
    "disc",
    "box",
    "triangle",
    "ring",
    "wire",
)
NUM_CLASSES = len(CLASS_NAMES)
IGNORE_INDEX = 255

# Rows: red, blue, yellow, green, purple, orange, dark grey, light grey.
_PALETTE = np.array(
    [
        [0.85, 0.25, 0.20],
        [0.20, 0.55, 0.85],
        [0.95, 0.75, 0.20],
        [0.30, 0.70, 0.35],
        [0.60, 0.35, 0.75],
        [0.90, 0.55, 0.15],
        [0.25, 0.25, 0.30],
        [0.80, 0.80, 0.80],
    ],
    dtype=np.float32,
)
_TEXTURES = ("solid", "stripes", "checker", "gradient")
# The palette rows an object of each class is painted in. Backgrounds use every row, so
# colour alone does not separate an object from the background (its outline does), and
# discs and rings share their colours, so only the hole, up to a radius away from a
# ring pixel, tells a ring from a disc.
_CLASS_COLOURS: Dict[str, Tuple[int, ...]] = {
    "disc": (0, 5),
    "ring": (0, 5),
    "box": (1,),
    "triangle": (3,),
    "wire": (4,),
}

Size = Union[int, Tuple[int, int]]


@dataclass(frozen=True)
class SceneObject:
    """One object of a scene, in resolution-free units (the image spans [0, 1] × [0,
    1]).

    ``params`` depends on ``kind``: disc ``(cx, cy, r)``, box
    ``(cx, cy, half_w, half_h, angle)``, triangle ``(x0, y0, x1, y1, x2, y2)``, ring
    ``(cx, cy, r_outer, r_inner)``, wire ``(x0, y0, x1, y1, half_width, bend)`` (a
    quadratic curve bent sideways by ``bend``). ``scale`` is ``small``, ``medium``
    or ``large`` (:data:`SCALES`) for solid objects and ``thin`` for wires.
    """

    label: int
    kind: str
    params: Tuple[float, ...]
    colour: Tuple[float, float, float]
    texture: str
    texture_params: Tuple[float, float, float]
    scale: str = ""


@dataclass(frozen=True)
class Scene:
    """A background description plus objects painted in order (later objects occlude
    earlier ones).

    ``extent`` is the field of view in units of one standard scene's side: 1 for
    :func:`make_scene`, ``k`` for :func:`make_wide_scene`'s ``k × k`` view. Rendered
    at ``extent × 64`` pixels, a wide scene's objects are as many pixels across as a
    standard scene's at 64 pixels.
    """

    background: Tuple[Tuple[float, float, float], Tuple[float, float, float], float]
    objects: Tuple[SceneObject, ...]
    extent: float = 1.0


def _colour(
    rng: np.random.Generator,
    avoid: Sequence[Tuple[float, float, float]] = (),
    choices: Optional[Sequence[int]] = None,
) -> Tuple[float, float, float]:
    # a palette colour (one of the rows ``choices``, default any), jittered, kept at
    # least 0.35 (RGB distance) from the colours in ``avoid`` where it can be, so that
    # an object rarely vanishes into the background behind it
    rows = range(len(_PALETTE)) if choices is None else choices
    for _ in range(32):
        base = _PALETTE[rows[int(rng.integers(len(rows)))]]
        colour = np.clip(base + rng.uniform(-0.08, 0.08, size=3), 0.0, 1.0)
        if all(np.linalg.norm(colour - np.asarray(a)) >= 0.35 for a in avoid):
            break
    return tuple(float(v) for v in colour)


#: Object sizes of :func:`make_scene`: the radius of an object's enclosing circle, in
#: units of the image side, for the small, medium and large scale. At the training size
#: (64 px) they are about 5, 9 and 15 px.
SCALES: Dict[str, float] = {"small": 0.08, "medium": 0.14, "large": 0.23}
#: The range of a wire's half-width, in units of the image side. Wires are 2.8–4.1 px
#: wide at 64 px, about half a feature cell at output stride 8.
WIRE_HALF_WIDTH = (0.022, 0.032)


def _background(
    rng: np.random.Generator,
) -> Tuple[Tuple[float, float, float], Tuple[float, float, float], float]:
    return (_colour(rng), _colour(rng), float(rng.uniform(0, 2 * math.pi)))


def make_scene(
    rng: np.random.Generator,
    background: Optional[
        Tuple[Tuple[float, float, float], Tuple[float, float, float], float]
    ] = None,
) -> Scene:
    """Draw a random scene: 2–5 solid objects of mixed classes at three scales, placed
    so that they rarely overlap, plus one or two thin wires painted on top.

    Textures are shared by every class; box, triangle and wire each have their own
    colours, discs and rings share theirs, so only the hole (up to a radius away)
    tells a ring pixel from a disc pixel, and backgrounds use every colour.
    ``background`` (default: drawn from ``rng``) lets :func:`make_wide_scene` share
    one background between the views it tiles.
    """
    if background is None:
        background = _background(rng)
    n_objects = int(rng.integers(2, 6))
    labels = [
        int(v) for v in rng.integers(1, CLASS_NAMES.index("wire"), size=n_objects)
    ]
    labels += [CLASS_NAMES.index("wire")] * int(rng.integers(1, 3))
    names = list(SCALES)
    # (cx, cy, radius) of the solid objects placed so far
    placed: List[Tuple[float, float, float]] = []
    objects: List[SceneObject] = []
    for label in labels:
        kind = CLASS_NAMES[label]
        scale_name = names[int(rng.choice(3, p=[0.4, 0.35, 0.25]))]
        radius = SCALES[scale_name] * float(rng.uniform(0.85, 1.15))
        if kind != "wire":
            # keep the object inside the image and away from the objects placed so far
            for _ in range(40):
                cx, cy = (
                    float(v) for v in rng.uniform(radius * 0.7, 1 - radius * 0.7, 2)
                )
                if all(
                    math.hypot(cx - x, cy - y) >= 0.9 * (radius + r)
                    for x, y, r in placed
                ):
                    break
            placed.append((cx, cy, radius))
        else:
            cx, cy = (float(v) for v in rng.uniform(0.2, 0.8, size=2))
        if kind == "disc":
            params: Tuple[float, ...] = (cx, cy, radius)
        elif kind == "box":
            # a box with half-sides (a, b) has circumradius hypot(a, b) = radius
            t = float(rng.uniform(0.55, 1.0))
            a = radius / math.sqrt(1 + t * t)
            params = (cx, cy, a, a * t, float(rng.uniform(0, math.pi)))
        elif kind == "triangle":
            angles = (
                rng.uniform(0, 2 * math.pi)
                + np.array([0, 2.1, 4.2])
                + rng.uniform(-0.25, 0.25, 3)
            )
            pts = [
                (cx + radius * math.cos(a), cy + radius * math.sin(a))
                for a in angles
            ]
            params = tuple(v for p in pts for v in p)
        elif kind == "ring":
            params = (cx, cy, radius, radius * float(rng.uniform(0.45, 0.65)))
        else:  # wire: long, thin and gently bent
            angle = float(rng.uniform(0, math.pi))
            half_len = float(rng.uniform(0.25, 0.45))
            dx, dy = half_len * math.cos(angle), half_len * math.sin(angle)
            params = (
                cx - dx,
                cy - dy,
                cx + dx,
                cy + dy,
                float(rng.uniform(*WIRE_HALF_WIDTH)),
                float(rng.uniform(-0.15, 0.15)),
            )
            scale_name = "thin"
        texture = _TEXTURES[int(rng.integers(len(_TEXTURES)))]
        texture_params = (
            float(rng.uniform(5, 12)),
            float(rng.uniform(0, math.pi)),
            float(rng.uniform(0.2, 0.45)),
        )
        objects.append(
            SceneObject(
                int(label),
                kind,
                params,
                _colour(rng, avoid=background[:2], choices=_CLASS_COLOURS[kind]),
                texture,
                texture_params,
                scale_name,
            )
        )
    return Scene(background, tuple(objects))


def _shifted(obj: SceneObject, dx: float, dy: float) -> SceneObject:
    # the same object moved by (dx, dy) scene units
    p = list(obj.params)
    points = 3 if obj.kind == "triangle" else 2 if obj.kind == "wire" else 1
    for i in range(points):
        p[2 * i] += dx
        p[2 * i + 1] += dy
    return replace(obj, params=tuple(p))


def make_wide_scene(rng: np.random.Generator, tiles: int) -> Scene:
    """A wider view of the same world: ``tiles × tiles`` standard scenes' worth of
    objects under one continuous background, with ``extent = tiles``.

    Objects keep their size in scene units, so rendered at ``tiles × 64`` pixels they
    are exactly as many pixels across as in a 64-pixel standard scene: the field of
    view grows, the object scale stays (SegFormer's Table 1c tests a model trained on
    crops on whole, larger images at the same scale). The background is one gradient
    over the whole view, not pasted tiles, so no seam marks where a view ends; objects
    placed near a view's edge may reach into the next one, as in the world.
    """
    if isinstance(tiles, bool) or not isinstance(tiles, int) or tiles < 1:
        raise ValueError(
            f"make_wide_scene: expected tiles a positive int, got {tiles!r}"
        )
    background = _background(rng)
    objects: List[SceneObject] = []
    for row in range(tiles):
        for col in range(tiles):
            view = make_scene(rng, background=background)
            objects += [_shifted(o, float(col), float(row)) for o in view.objects]
    return Scene(background, tuple(objects), float(tiles))


def _grid(
    size: Tuple[int, int], extent: float = 1.0
) -> Tuple[torch.Tensor, torch.Tensor]:
    h, w = size
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) / w
    if extent != 1.0:
        ys, xs = ys * extent, xs * extent
    return torch.meshgrid(ys, xs, indexing="ij")


def _segment_distance(
    x: torch.Tensor, y: torch.Tensor, px: torch.Tensor, py: torch.Tensor
) -> torch.Tensor:
    # distance from every pixel to the polyline through the points (px, py)
    ax, ay = px[:-1, None, None], py[:-1, None, None]  # (S, 1, 1) segment starts
    vx, vy = px[1:, None, None] - ax, py[1:, None, None] - ay
    tt = (((x - ax) * vx + (y - ay) * vy) / (vx * vx + vy * vy + 1e-12)).clamp(0, 1)
    d2 = (x - ax - tt * vx) ** 2 + (y - ay - tt * vy) ** 2  # (S, h, w)
    return d2.amin(dim=0).sqrt()


def _signed_distance(
    obj: SceneObject, x: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """Signed distance (image-side units) from each pixel centre to the object's
    outline: negative inside, positive outside."""
    p = obj.params
    if obj.kind == "disc":
        return torch.hypot(x - p[0], y - p[1]) - p[2]
    if obj.kind == "ring":
        mid, half = (p[2] + p[3]) / 2, (p[2] - p[3]) / 2
        return (torch.hypot(x - p[0], y - p[1]) - mid).abs() - half
    if obj.kind == "box":
        c, s = math.cos(p[4]), math.sin(p[4])
        u = ((x - p[0]) * c + (y - p[1]) * s).abs() - p[2]
        v = (-(x - p[0]) * s + (y - p[1]) * c).abs() - p[3]
        outside = torch.hypot(u.clamp(min=0), v.clamp(min=0))
        return outside + torch.maximum(u, v).clamp(max=0)
    if obj.kind == "triangle":
        (x0, y0), (x1, y1), (x2, y2) = p[0:2], p[2:4], p[4:6]
        e0 = (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0)
        e1 = (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)
        e2 = (x0 - x2) * (y - y2) - (y0 - y2) * (x - x2)
        inside = ((e0 >= 0) & (e1 >= 0) & (e2 >= 0)) | (
            (e0 <= 0) & (e1 <= 0) & (e2 <= 0)
        )
        px = torch.tensor([x0, x1, x2, x0])
        py = torch.tensor([y0, y1, y2, y0])
        d = _segment_distance(x, y, px, py)
        return torch.where(inside, -d, d)
    # wire: distance to a quadratic Bezier curve, approximated by 24 straight segments
    x0, y0, x1, y1, half_width, bend = p
    mx, my = (x0 + x1) / 2 - bend * (y1 - y0), (y0 + y1) / 2 + bend * (x1 - x0)
    t = torch.linspace(0, 1, 25)
    cxs = (1 - t) ** 2 * x0 + 2 * (1 - t) * t * mx + t**2 * x1
    cys = (1 - t) ** 2 * y0 + 2 * (1 - t) * t * my + t**2 * y1
    return _segment_distance(x, y, cxs, cys) - half_width


def _inside(obj: SceneObject, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return _signed_distance(obj, x, y) <= 0


def _bbox(obj: SceneObject) -> Tuple[float, float, float, float]:
    """A box (x_min, y_min, x_max, y_max) in [0, 1] units that contains the
    object."""
    p = obj.params
    if obj.kind in ("disc", "ring"):
        return p[0] - p[2], p[1] - p[2], p[0] + p[2], p[1] + p[2]
    if obj.kind == "box":
        r = math.hypot(p[2], p[3])
        return p[0] - r, p[1] - r, p[0] + r, p[1] + r
    if obj.kind == "triangle":
        return min(p[0::2]), min(p[1::2]), max(p[0::2]), max(p[1::2])
    x0, y0, x1, y1, half_width, bend = p
    mx, my = (x0 + x1) / 2 - bend * (y1 - y0), (y0 + y1) / 2 + bend * (x1 - x0)
    return (
        min(x0, x1, mx) - half_width,
        min(y0, y1, my) - half_width,
        max(x0, x1, mx) + half_width,
        max(y0, y1, my) + half_width,
    )


def _texture(
    kind: str, params: Tuple[float, float, float], x: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    freq, angle, contrast = params
    u = x * math.cos(angle) + y * math.sin(angle)
    if kind == "solid":
        return torch.ones_like(x)
    if kind == "stripes":
        return 1 - contrast * 0.5 * (1 + torch.sin(2 * math.pi * freq * u))
    if kind == "checker":
        v = -x * math.sin(angle) + y * math.cos(angle)
        # smooth squares (a product of sines through tanh) rather than hard-edged ones,
        # which would alias at low resolutions
        wave = torch.sin(math.pi * freq * u) * torch.sin(math.pi * freq * v)
        return 1 - contrast * 0.5 * (1 + torch.tanh(4 * wave))
    return 1 - contrast * u.remainder(1.0)  # gradient


def render_scene(scene: Scene, size: Size) -> Tuple[torch.Tensor, torch.Tensor]:
    """Render ``scene`` at ``size`` pixels: image ``(3, H, W)`` in [0, 1], mask
    ``(H, W)`` int64.

    The mask labels a pixel by the object its centre lies in, so the same scene
    rendered at two resolutions agrees after resizing, up to pixels on object
    boundaries. The image is anti-aliased: an outline pixel mixes the object's colour
    with what lies behind it in proportion to the pixel's coverage (from the signed
    distance to the outline), as a camera would.
    """
    h, w = (size, size) if isinstance(size, int) else size
    if isinstance(h, bool) or not all(isinstance(v, int) and v > 0 for v in (h, w)):
        raise ValueError(
            f"render_scene: expected size as a positive int or (H, W), got {size!r}"
        )
    e = scene.extent
    y, x = _grid((h, w), e)
    (c0, c1, angle) = scene.background
    # one gradient across the whole view; the ripple keeps its period in scene units
    gx, gy = (x, y) if e == 1.0 else (x / e, y / e)
    t = (gx * math.cos(angle) + gy * math.sin(angle) + 1.5) / 3.0
    image = (1 - t) * torch.tensor(c0)[:, None, None] + t * torch.tensor(c1)[
        :, None, None
    ]
    image = image * (0.92 + 0.08 * torch.sin(2 * math.pi * 5 * (x + 0.3 * y)))
    mask = torch.zeros(h, w, dtype=torch.int64)
    # pixels per scene unit (the geometric mean if H != W)
    pixels = math.sqrt(h * w) / e
    for obj in scene.objects:
        # evaluate only the pixels (plus a one-pixel margin for the anti-aliased edge)
        # whose centres can lie near the object's bounding box
        bx0, by0, bx1, by1 = _bbox(obj)
        if e != 1.0:
            bx0, by0, bx1, by1 = bx0 / e, by0 / e, bx1 / e, by1 / e
        r0, r1 = max(0, math.floor(by0 * h - 1.5)), min(h, math.ceil(by1 * h + 1.5))
        c0_ = max(0, math.floor(bx0 * w - 1.5))
        c1_ = min(w, math.ceil(bx1 * w + 1.5))
        if r0 >= r1 or c0_ >= c1_:
            continue
        xs, ys = x[r0:r1, c0_:c1_], y[r0:r1, c0_:c1_]
        distance = _signed_distance(obj, xs, ys)
        coverage = (0.5 - distance * pixels).clamp(0, 1)
        shade = _texture(obj.texture, obj.texture_params, xs, ys)
        colour = torch.tensor(obj.colour)[:, None, None] * shade
        patch = image[:, r0:r1, c0_:c1_]
        image[:, r0:r1, c0_:c1_] = coverage * colour + (1 - coverage) * patch
        mask[r0:r1, c0_:c1_][distance <= 0] = obj.label
    return image.clamp(0, 1), mask


#: Scale labels of :func:`render_scale_map` (0 is background).
SCALE_NAMES: Tuple[str, ...] = ("small", "medium", "large", "thin")


def render_scale_map(scene: Scene, size: Size) -> torch.Tensor:
    """``(H, W)`` int64: each pixel labelled 1 + the index in :data:`SCALE_NAMES` of
    the scale of the object the mask gives it to (wires are ``thin``), 0 for
    background — to score a model per object scale (chapter 04)."""
    h, w = (size, size) if isinstance(size, int) else size
    if isinstance(h, bool) or not all(isinstance(v, int) and v > 0 for v in (h, w)):
        raise ValueError(
            f"render_scale_map: expected size as a positive int or (H, W), got {size!r}"
        )
    y, x = _grid((h, w), scene.extent)
    out = torch.zeros(h, w, dtype=torch.int64)
    for obj in scene.objects:
        if obj.scale not in SCALE_NAMES:
            raise ValueError(
                f"render_scale_map: expected each object's scale in {SCALE_NAMES}, got {obj.scale!r}"
            )
        out[_inside(obj, x, y)] = 1 + SCALE_NAMES.index(obj.scale)
    return out


class SyntheticScenes(Dataset):
    """Procedurally generated segmentation scenes, deterministic from ``seed``.

    Item ``i`` is the scene drawn from ``numpy.random.default_rng((seed, i))``
    rendered at ``size``: ``(image (3, H, W) float32 in [0, 1], mask (H, W) int64)``
    with classes :data:`CLASS_NAMES` (background + 5 object classes, including thin
    wires and rings whose holes show background). Use different seeds for training
    and validation sets. ``tiles > 1`` draws wide scenes (:func:`make_wide_scene`):
    render them at ``tiles × 64`` pixels to keep the training object scale.
    """

    def __init__(
        self,
        num_samples: int = 1000,
        size: Size = 128,
        seed: int = 0,
        transform: Optional[
            Callable[
                [torch.Tensor, torch.Tensor], Tuple[torch.Tensor, torch.Tensor]
            ]
        ] = None,
        cache: bool = False,
        tiles: int = 1,
    ) -> None:
        if (
            isinstance(num_samples, bool)
            or not isinstance(num_samples, int)
            or num_samples <= 0
        ):
            raise ValueError(
                f"SyntheticScenes: expected num_samples a positive int, got {num_samples!r}"
            )
        sizes = (size, size) if isinstance(size, int) else tuple(size)
        if len(sizes) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in sizes
        ):
            raise ValueError(
                f"SyntheticScenes: expected size a positive int or (H, W), got {size!r}"
            )
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(
                f"SyntheticScenes: expected seed a non-negative int, got {seed!r}"
            )
        self.num_samples, self.size, self.seed, self.transform = (
            num_samples,
            sizes,
            seed,
            transform,
        )
        if isinstance(tiles, bool) or not isinstance(tiles, int) or tiles < 1:
            raise ValueError(
                f"SyntheticScenes: expected tiles a positive int, got {tiles!r}"
            )
        self.tiles = tiles
        # cache=True keeps rendered items in memory (training re-reads them every epoch)
        self._cache: Optional[dict] = {} if cache else None
        self.classes = CLASS_NAMES
        self.num_classes = NUM_CLASSES

    def __len__(self) -> int:
        return self.num_samples

    def scale_map(self, index: int, size: Optional[Size] = None) -> torch.Tensor:
        """Item ``index``'s pixels labelled by the scale of the object they belong
        to: 0 background, then :data:`SCALE_NAMES` (``small``, ``medium``,
        ``large``, ``thin``) as 1–4, at ``size`` (default: the dataset's)."""
        return render_scale_map(
            self.scene(index), self.size if size is None else size
        )

    def scene(self, index: int) -> Scene:
        """The vector description of item ``index`` (render it at any size with
        :func:`render_scene`)."""
        if not -self.num_samples <= index < self.num_samples:
            raise IndexError(
                f"SyntheticScenes: index {index} out of range for {self.num_samples} samples"
            )
        index = index % self.num_samples
        if self.tiles == 1:
            return make_scene(np.random.default_rng((self.seed, index)))
        return make_wide_scene(
            np.random.default_rng((self.seed, index, self.tiles)), self.tiles
        )

    def render(self, index: int, size: Size) -> Tuple[torch.Tensor, torch.Tensor]:
        """Item ``index`` rendered at another resolution (no transform applied)."""
        return render_scene(self.scene(index), size)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        if self._cache is not None and index in self._cache:
            image, mask = self._cache[index]
        else:
            image, mask = render_scene(self.scene(index), self.size)
            if self._cache is not None:
                self._cache[index] = (image, mask)
        if self.transform is not None:
            image, mask = self.transform(image, mask)
        return image, mask

    def __repr__(self) -> str:
        return (
            f"SyntheticScenes(num_samples={self.num_samples}, size={self.size}, seed={self.seed}, "
            + (f"tiles={self.tiles}, " if self.tiles > 1 else "")
            + f"classes={list(self.classes)})"
        )


def standard_splits(
    size: Size = 64, num_train: int = 4096, num_val: int = 256
) -> Tuple[SyntheticScenes, SyntheticScenes]:
    """The book's training and validation sets (seeds 0 and 1), 64×64 by default.

    ``make experiments`` trains every configuration on these splits with
    :data:`tutorial_lib.experiments.RECIPE`, and the chapters' short live runs use
    them with :data:`tutorial_lib.train.RECIPE_SMALL`, so results are comparable
    across chapters. Scenes are rendered on first use and kept in memory.
    """
    return (
        SyntheticScenes(num_train, size=size, seed=0, cache=True),
        SyntheticScenes(num_val, size=size, seed=1, cache=True),
    )


def same_scale_scenes(
    tiles: int, num_samples: int = 256, seed: int = 1, tile_size: int = 64
) -> SyntheticScenes:
    """Validation scenes whose field of view is ``tiles × tiles`` standard scenes,
    rendered at ``tiles × tile_size`` pixels, so objects are as many pixels across as
    in the 64-pixel scenes the models were trained on: the test of SegFormer's
    Table 1c (a model trained on crops, tested on whole larger images at the same
    scale), as opposed to :func:`tutorial_lib.compare.scenes_at`, which renders the
    same scenes with more pixels so objects grow."""
    return SyntheticScenes(
        num_samples, size=tiles * tile_size, seed=seed, cache=True, tiles=tiles
    )


def sample_image(size: Optional[Size] = None) -> torch.Tensor:
    """A real photograph available offline: Grace Hopper, shipped with matplotlib's
    sample data.

    Returns ``(3, H, W)`` float32 in [0, 1] (600×512 as shipped), resized bilinearly
    to ``size`` if given.
    """
    import matplotlib.cbook as cbook
    import matplotlib.image as mpimg

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        array = mpimg.imread(f, format="jpg")
    image = (
        torch.from_numpy(np.array(array, copy=True)).permute(2, 0, 1).float()
        / 255.0
    )
    if size is not None:
        hw = (size, size) if isinstance(size, int) else tuple(size)
        image = torch.nn.functional.interpolate(
            image[None],
            size=hw,
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )[0].clamp(0, 1)
    return image


class SegmentationFolder(Dataset):
    """Images + PNG masks on disk, in the Pascal VOC or ADE20K layout.

    * VOC: ``root/JPEGImages/*.jpg``, ``root/SegmentationClass/*.png`` (palette
      PNGs, 255 = void) and ``root/ImageSets/Segmentation/{split}.txt`` listing the
      ids.
    * ADE20K: ``root/images/{split}/*.jpg`` and ``root/annotations/{split}/*.png``
      (0 = "other"; pass ``reduce_zero_label=True`` to map 0 → 255 and shift classes
      down by one, as ADE20K training does).

    Items are ``(image (3, H, W) float32 in [0, 1], mask (H, W) int64)``;
    ``transform(image, mask)`` is applied jointly if given.
    """

    def __init__(
        self,
        root: Union[str, pathlib.Path],
        split: str = "train",
        reduce_zero_label: bool = False,
        transform: Optional[
            Callable[
                [torch.Tensor, torch.Tensor], Tuple[torch.Tensor, torch.Tensor]
            ]
        ] = None,
    ) -> None:
        self.root = pathlib.Path(root)
        if not self.root.is_dir():
            raise ValueError(
                f"SegmentationFolder: expected root to be a directory, got {str(root)!r}"
            )
        self.split, self.reduce_zero_label, self.transform = (
            split,
            reduce_zero_label,
            transform,
        )
        voc_list = self.root / "ImageSets" / "Segmentation" / f"{split}.txt"
        if voc_list.exists():
            ids = [
                line.strip()
                for line in voc_list.read_text().splitlines()
                if line.strip()
            ]
            self.pairs = [
                (
                    self._find(self.root / "JPEGImages", i),
                    self.root / "SegmentationClass" / f"{i}.png",
                )
                for i in ids
            ]
            self.layout = "voc"
        elif (self.root / "images" / split).is_dir():
            images = sorted(
                p
                for p in (self.root / "images" / split).iterdir()
                if p.suffix.lower() in {".jpg", ".jpeg", ".png"}
            )
            self.pairs = [
                (p, self.root / "annotations" / split / (p.stem + ".png"))
                for p in images
            ]
            self.layout = "ade20k"
        else:
            raise ValueError(
                f"SegmentationFolder: expected {voc_list} (VOC layout) or "
                f"{self.root / 'images' / split} (ADE20K layout); found neither"
            )
        missing = [str(m) for _, m in self.pairs if not m.exists()]
        if missing:
            raise ValueError(
                f"SegmentationFolder: {len(missing)} mask(s) missing, e.g. {missing[:3]}"
            )
        if not self.pairs:
            raise ValueError(
                f"SegmentationFolder: no images found for split {split!r} in {self.root}"
            )

    @staticmethod
    def _find(folder: pathlib.Path, stem: str) -> pathlib.Path:
        for ext in (".jpg", ".jpeg", ".png"):
            if (folder / (stem + ext)).exists():
                return folder / (stem + ext)
        raise ValueError(
            f"SegmentationFolder: no image named {stem}.jpg/.png in {folder}"
        )

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        from PIL import Image

        image_path, mask_path = self.pairs[index]
        with Image.open(image_path) as im:
            image = torch.from_numpy(
                np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
            )
        with Image.open(mask_path) as im:
            if im.mode not in ("P", "L", "I", "I;16"):
                raise ValueError(
                    f"SegmentationFolder: expected a single-channel or palette PNG mask, "
                    f"got mode {im.mode!r} in {mask_path}"
                )
            mask = torch.from_numpy(np.asarray(im, dtype=np.int64).copy())
        image = image.permute(2, 0, 1).float() / 255.0
        if image.shape[-2:] != mask.shape:
            raise ValueError(
                f"SegmentationFolder: image {image_path.name} is {tuple(image.shape[-2:])} "
                f"but its mask is {tuple(mask.shape)}"
            )
        if self.reduce_zero_label:
            mask = torch.where(
                mask == 0, torch.full_like(mask, IGNORE_INDEX), mask - 1
            )
            mask[mask == IGNORE_INDEX - 1] = IGNORE_INDEX
        if self.transform is not None:
            image, mask = self.transform(image, mask)
        return image, mask
