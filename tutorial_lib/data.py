"""Data for the book: procedurally generated scenes, a real photograph, and a folder
loader.

* :class:`SyntheticScenes` renders random vector scenes at any resolution, so the
  same scene can be seen at 64, 128 or 256 pixels (later chapters test resolution
  robustness with it).
* :func:`sample_image` returns a real photograph that ships with matplotlib, for
  patching and attention demos without a download.
* :class:`SegmentationFolder` reads the common "images + PNG masks" layouts (Pascal
  VOC, ADE20K), so assignments can train on real data in Colab.
"""

from __future__ import annotations

import math
import pathlib
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple, Union

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
    "render_scene",
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

# Colours are shared by every class (and by the background), so that shape and context,
# not colour alone, decide the class.
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

Size = Union[int, Tuple[int, int]]


@dataclass(frozen=True)
class SceneObject:
    """One object of a scene, in resolution-free units (the image spans [0, 1] × [0,
    1]).

    ``params`` depends on ``kind``: disc ``(cx, cy, r)``, box
    ``(cx, cy, half_w, half_h, angle)``, triangle ``(x0, y0, x1, y1, x2, y2)``, ring
    ``(cx, cy, r_outer, r_inner)``, wire ``(x0, y0, x1, y1, half_width, bend)`` (a
    quadratic curve bent sideways by ``bend``).
    """

    label: int
    kind: str
    params: Tuple[float, ...]
    colour: Tuple[float, float, float]
    texture: str
    texture_params: Tuple[float, float, float]


@dataclass(frozen=True)
class Scene:
    """A background description plus objects painted in order (later objects occlude
    earlier ones)."""

    background: Tuple[Tuple[float, float, float], Tuple[float, float, float], float]
    objects: Tuple[SceneObject, ...]


def _colour(rng: np.random.Generator) -> Tuple[float, float, float]:
    base = _PALETTE[rng.integers(len(_PALETTE))]
    jitter = rng.uniform(-0.08, 0.08, size=3)
    return tuple(float(v) for v in np.clip(base + jitter, 0.0, 1.0))


def make_scene(rng: np.random.Generator) -> Scene:
    """Draw a random scene: 3–7 objects of mixed classes and scales, at least one
    thin wire."""
    background = (_colour(rng), _colour(rng), float(rng.uniform(0, 2 * math.pi)))
    n_objects = int(rng.integers(3, 8))
    labels = list(rng.integers(1, NUM_CLASSES, size=n_objects))
    if CLASS_NAMES.index("wire") not in labels:
        labels[int(rng.integers(n_objects))] = CLASS_NAMES.index("wire")
    objects: List[SceneObject] = []
    for label in labels:
        kind = CLASS_NAMES[label]
        scale = float(
            rng.choice([0.07, 0.14, 0.25], p=[0.35, 0.4, 0.25])
            * rng.uniform(0.8, 1.25)
        )
        cx, cy = (float(v) for v in rng.uniform(0.1, 0.9, size=2))
        if kind == "disc":
            params: Tuple[float, ...] = (cx, cy, scale)
        elif kind == "box":
            aspect = float(rng.uniform(0.5, 1.6))
            params = (
                cx,
                cy,
                scale * aspect,
                scale / aspect,
                float(rng.uniform(0, math.pi)),
            )
        elif kind == "triangle":
            angles = (
                rng.uniform(0, 2 * math.pi)
                + np.array([0, 2.1, 4.2])
                + rng.uniform(-0.3, 0.3, 3)
            )
            pts = [
                (cx + 1.3 * scale * math.cos(a), cy + 1.3 * scale * math.sin(a))
                for a in angles
            ]
            params = tuple(v for p in pts for v in p)
        elif kind == "ring":
            r_outer = max(scale, 0.08)
            params = (cx, cy, r_outer, r_outer * float(rng.uniform(0.45, 0.7)))
        else:  # wire: long and thin, 2-4 px wide at 128 px
            angle = float(rng.uniform(0, math.pi))
            half_len = float(rng.uniform(0.2, 0.45))
            dx, dy = half_len * math.cos(angle), half_len * math.sin(angle)
            params = (
                cx - dx,
                cy - dy,
                cx + dx,
                cy + dy,
                float(rng.uniform(0.008, 0.014)),
                float(rng.uniform(-0.15, 0.15)),
            )
        texture = _TEXTURES[int(rng.integers(len(_TEXTURES)))]
        texture_params = (
            float(rng.uniform(12, 30)),
            float(rng.uniform(0, math.pi)),
            float(rng.uniform(0.5, 0.8)),
        )
        objects.append(
            SceneObject(
                int(label), kind, params, _colour(rng), texture, texture_params
            )
        )
    return Scene(background, tuple(objects))


def _grid(size: Tuple[int, int]) -> Tuple[torch.Tensor, torch.Tensor]:
    h, w = size
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) / w
    return torch.meshgrid(ys, xs, indexing="ij")


def _inside(obj: SceneObject, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    p = obj.params
    if obj.kind == "disc":
        return (x - p[0]) ** 2 + (y - p[1]) ** 2 <= p[2] ** 2
    if obj.kind == "ring":
        d2 = (x - p[0]) ** 2 + (y - p[1]) ** 2
        return (d2 <= p[2] ** 2) & (d2 >= p[3] ** 2)
    if obj.kind == "box":
        c, s = math.cos(p[4]), math.sin(p[4])
        u, v = (x - p[0]) * c + (y - p[1]) * s, -(x - p[0]) * s + (y - p[1]) * c
        return (u.abs() <= p[2]) & (v.abs() <= p[3])
    if obj.kind == "triangle":
        (x0, y0), (x1, y1), (x2, y2) = p[0:2], p[2:4], p[4:6]
        e0 = (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0)
        e1 = (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)
        e2 = (x0 - x2) * (y - y2) - (y0 - y2) * (x - x2)
        return ((e0 >= 0) & (e1 >= 0) & (e2 >= 0)) | (
            (e0 <= 0) & (e1 <= 0) & (e2 <= 0)
        )
    # wire: distance to a quadratic Bezier curve, approximated by 24 straight segments
    x0, y0, x1, y1, half_width, bend = p
    mx, my = (x0 + x1) / 2 - bend * (y1 - y0), (y0 + y1) / 2 + bend * (x1 - x0)
    t = torch.linspace(0, 1, 25)
    cxs = (1 - t) ** 2 * x0 + 2 * (1 - t) * t * mx + t**2 * x1
    cys = (1 - t) ** 2 * y0 + 2 * (1 - t) * t * my + t**2 * y1
    ax, ay = cxs[:-1, None, None], cys[:-1, None, None]  # (S, 1, 1) segment starts
    vx, vy = cxs[1:, None, None] - ax, cys[1:, None, None] - ay
    tt = (((x - ax) * vx + (y - ay) * vy) / (vx * vx + vy * vy + 1e-12)).clamp(0, 1)
    d2 = (x - ax - tt * vx) ** 2 + (y - ay - tt * vy) ** 2  # (S, h, w)
    return d2.amin(dim=0) <= half_width**2


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
        return 1 - contrast * (
            (torch.floor(freq * u / 2) + torch.floor(freq * v / 2)) % 2
        )
    return 1 - contrast * u.remainder(1.0)  # gradient


def render_scene(scene: Scene, size: Size) -> Tuple[torch.Tensor, torch.Tensor]:
    """Render ``scene`` at ``size`` pixels: image ``(3, H, W)`` in [0, 1], mask
    ``(H, W)`` int64.

    Every pixel is evaluated at its centre, so the same scene rendered at two
    resolutions agrees after resizing, up to pixels on object boundaries.
    """
    h, w = (size, size) if isinstance(size, int) else size
    if isinstance(h, bool) or not all(isinstance(v, int) and v > 0 for v in (h, w)):
        raise ValueError(
            f"render_scene: expected size as a positive int or (H, W), got {size!r}"
        )
    y, x = _grid((h, w))
    (c0, c1, angle) = scene.background
    t = (x * math.cos(angle) + y * math.sin(angle) + 1.5) / 3.0
    image = (1 - t) * torch.tensor(c0)[:, None, None] + t * torch.tensor(c1)[
        :, None, None
    ]
    image = image * (0.9 + 0.1 * torch.sin(2 * math.pi * 7 * (x + 0.3 * y)))
    mask = torch.zeros(h, w, dtype=torch.int64)
    for obj in scene.objects:
        # evaluate only the pixels whose centres can lie inside the object's bounding box
        bx0, by0, bx1, by1 = _bbox(obj)
        r0, r1 = max(0, math.floor(by0 * h - 0.5)), min(h, math.ceil(by1 * h + 0.5))
        c0_, c1_ = max(0, math.floor(bx0 * w - 0.5)), min(
            w, math.ceil(bx1 * w + 0.5)
        )
        if r0 >= r1 or c0_ >= c1_:
            continue
        xs, ys = x[r0:r1, c0_:c1_], y[r0:r1, c0_:c1_]
        inside = _inside(obj, xs, ys)
        shade = _texture(obj.texture, obj.texture_params, xs, ys)
        colour = torch.tensor(obj.colour)[:, None, None] * shade
        image[:, r0:r1, c0_:c1_] = torch.where(
            inside, colour, image[:, r0:r1, c0_:c1_]
        )
        mask[r0:r1, c0_:c1_][inside] = obj.label
    return image.clamp(0, 1), mask


class SyntheticScenes(Dataset):
    """Procedurally generated segmentation scenes, deterministic from ``seed``.

    Item ``i`` is the scene drawn from ``numpy.random.default_rng((seed, i))``
    rendered at ``size``: ``(image (3, H, W) float32 in [0, 1], mask (H, W) int64)``
    with classes :data:`CLASS_NAMES` (background + 5 object classes, including thin
    wires and rings whose holes show background). Use different seeds for training
    and validation sets.
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
        # cache=True keeps rendered items in memory (training re-reads them every epoch)
        self._cache: Optional[dict] = {} if cache else None
        self.classes = CLASS_NAMES
        self.num_classes = NUM_CLASSES

    def __len__(self) -> int:
        return self.num_samples

    def scene(self, index: int) -> Scene:
        """The vector description of item ``index`` (render it at any size with
        :func:`render_scene`)."""
        if not -self.num_samples <= index < self.num_samples:
            raise IndexError(
                f"SyntheticScenes: index {index} out of range for {self.num_samples} samples"
            )
        return make_scene(
            np.random.default_rng((self.seed, index % self.num_samples))
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
            f"classes={list(self.classes)})"
        )


def standard_splits(
    size: Size = 64, num_train: int = 512, num_val: int = 128
) -> Tuple[SyntheticScenes, SyntheticScenes]:
    """The book's standard small training and validation sets (seeds 0 and 1).

    Every chapter that trains on CPU uses these splits with
    :data:`tutorial_lib.train.RECIPE_SMALL`, so results are comparable across
    chapters (chapter 01's baseline is the reference point).
    """
    return (
        SyntheticScenes(num_train, size=size, seed=0, cache=True),
        SyntheticScenes(num_val, size=size, seed=1, cache=True),
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
