"""SyntheticScenes determinism and resolution independence; sample image; SegmentationFolder."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tutorial_lib.data import (_PALETTE, CLASS_NAMES, SCALE_NAMES, SCALES, Scene, SceneObject,
                               SegmentationFolder, SyntheticScenes, render_scene, sample_image,
                               standard_splits)


def test_deterministic_from_seed():
    a, b = SyntheticScenes(8, size=64, seed=3), SyntheticScenes(8, size=64, seed=3)
    for i in range(8):
        ia, ma = a[i]
        ib, mb = b[i]
        assert torch.equal(ia, ib) and torch.equal(ma, mb)
    other = SyntheticScenes(8, size=64, seed=4)
    assert not torch.equal(a[0][1], other[0][1])


def test_shapes_types_and_classes():
    ds = SyntheticScenes(64, size=(48, 80), seed=0)
    image, mask = ds[0]
    assert image.shape == (3, 48, 80) and image.dtype == torch.float32
    assert mask.shape == (48, 80) and mask.dtype == torch.int64
    assert 0.0 <= image.min() and image.max() <= 1.0
    seen = torch.zeros(len(CLASS_NAMES), dtype=torch.bool)
    for i in range(64):
        seen[ds[i][1].unique()] = True
    assert seen.all(), "every class (background + 5 objects) appears in 64 scenes"


def test_every_scene_has_a_thin_wire():
    ds = SyntheticScenes(200, size=64, seed=0)
    wire = CLASS_NAMES.index("wire")
    widths = []
    for i in range(200):
        wires = [o for o in ds.scene(i).objects if o.label == wire]
        assert 1 <= len(wires) <= 2, "each scene contains one or two wires"
        widths += [o.params[4] * 2 * 64 for o in wires]
        assert all(o.scale == "thin" for o in wires)
        assert ds.scene(i).objects[-len(wires):] == tuple(wires), "wires are painted last"
    # chapters 02 and 05 rely on this: at the training size a wire is 2.8-4.1 px wide, about
    # half a feature cell at output stride 8 and far below one at 16 or 32
    assert 2.8 <= min(widths) and max(widths) <= 4.1 + 1e-9
    assert max(widths) < 8 / 2 + 0.2


def test_object_scales_at_the_training_size():
    ds = SyntheticScenes(300, size=64, seed=0)
    counts = {name: 0 for name in SCALES}
    for i in range(300):
        for obj in ds.scene(i).objects:
            if obj.kind == "wire":
                continue
            counts[obj.scale] += 1
            radius = {"disc": lambda p: p[2], "ring": lambda p: p[2]}.get(obj.kind)
            if radius is not None:  # the enclosing radius is the scale's, ±15 %
                assert 0.85 * SCALES[obj.scale] - 1e-9 <= radius(obj.params) <= 1.15 * SCALES[obj.scale] + 1e-9
    total = sum(counts.values())
    # chapter 04 scores ASPP per scale: every scale must be well represented
    assert all(c / total >= 0.2 for c in counts.values()), counts
    radii_px = {name: r * 64 for name, r in SCALES.items()}
    assert radii_px["small"] < 6 and radii_px["large"] > 14


def test_class_balance_and_scale_map():
    ds = SyntheticScenes(128, size=64, seed=1)
    counts = torch.zeros(len(CLASS_NAMES))
    for i in range(128):
        mask = ds[i][1]
        counts += torch.bincount(mask.flatten(), minlength=len(CLASS_NAMES)).float()
        scale = ds.scale_map(i)
        assert torch.equal(scale > 0, mask > 0), "the scale map covers exactly the objects"
        wire = mask == CLASS_NAMES.index("wire")
        assert bool((scale[wire] == 1 + SCALE_NAMES.index("thin")).all())
    share = counts / counts.sum()
    assert 0.7 <= share[0] <= 0.85, share  # background
    assert bool((share[1:] >= 0.015).all()), f"every object class has >= 1.5 % of the pixels: {share}"


def test_discs_and_rings_share_colours_other_classes_do_not():
    ds = SyntheticScenes(300, size=32, seed=0)
    colours = {}
    for i in range(300):
        for obj in ds.scene(i).objects:
            colours.setdefault(obj.kind, []).append(np.array(obj.colour))

    def nearest_row(c):  # the palette row a jittered colour came from
        return int(np.argmin(np.linalg.norm(_PALETTE - c, axis=1)))

    rows = {k: {nearest_row(c) for c in v} for k, v in colours.items()}
    # only the hole tells a ring from a disc (chapter 01, 13): their colours must coincide
    assert rows["disc"] == rows["ring"] and len(rows["disc"]) == 2
    for a in ("box", "triangle", "wire"):
        for b in ("disc", "box", "triangle", "wire"):
            if a != b:
                assert not rows[a] & rows[b], (a, b, rows)


def test_outlines_are_anti_aliased():
    # one large disc on a plain background: pixels on its outline mix the two colours
    disc = SceneObject(1, "disc", (0.5, 0.5, 0.3), (1.0, 0.0, 0.0), "solid", (5.0, 0.0, 0.0), "large")
    scene = Scene(((0.0, 0.0, 1.0), (0.0, 0.0, 1.0), 0.0), (disc,))
    image, mask = render_scene(scene, 64)
    red = image[0]
    outline = (red > 0.05) & (red < 0.85)
    assert 20 <= int(outline.sum()) <= 200, "a ring of partly covered pixels around the disc"
    assert bool((red[mask == 1] >= 0.45).all()), "pixels whose centre is inside are at least half covered"
    assert bool((red[(mask == 0)] <= 0.55).all())


@pytest.mark.parametrize("index", range(10))
def test_resolution_independence(index):
    ds = SyntheticScenes(10, size=128, seed=0)
    _, m64 = ds.render(index, 64)
    _, m128 = ds.render(index, 128)
    # nearest-downsample 128 -> 64 samples pixel (2i+1) whose centre is close to the 64 px centre
    down = F.interpolate(m128[None, None].float(), size=(64, 64), mode="nearest")[0, 0].long()
    disagree = down != m64
    assert disagree.float().mean() < 0.05
    # disagreements sit on boundaries: each has a differently-labelled 4-neighbour in the 64 px mask
    padded = F.pad(m64[None, None].float(), (1, 1, 1, 1), mode="replicate")[0, 0]
    centre = padded[1:-1, 1:-1]
    boundary = ((padded[:-2, 1:-1] != centre) | (padded[2:, 1:-1] != centre)
                | (padded[1:-1, :-2] != centre) | (padded[1:-1, 2:] != centre))
    assert bool((disagree & ~boundary).sum() <= 2)


def test_cache_returns_identical_items():
    cached, plain = SyntheticScenes(3, size=16, seed=2, cache=True), SyntheticScenes(3, size=16, seed=2)
    for i in range(3):
        assert torch.equal(cached[i][0], plain[i][0]) and cached[i][0] is cached[i][0]


def test_standard_splits_are_disjoint_seeds():
    train, val = standard_splits()
    assert (train.seed, val.seed) == (0, 1) and len(train) == 4096 and len(val) == 256


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_samples"):
        SyntheticScenes(0)
    with pytest.raises(ValueError, match="size"):
        SyntheticScenes(4, size=-1)
    with pytest.raises(ValueError, match="size"):
        render_scene(SyntheticScenes(1).scene(0), 0)
    with pytest.raises(IndexError):
        SyntheticScenes(4).scene(4)


def test_sample_image_is_a_real_photo():
    img = sample_image()
    assert img.shape == (3, 600, 512)
    assert 0 <= img.min() and img.max() <= 1 and img.std() > 0.1
    assert sample_image(224).shape == (3, 224, 224)


def _write_png(path, array, mode):
    from PIL import Image

    Image.fromarray(array.astype(np.uint8), mode=mode).save(path)


def test_segmentation_folder_voc_layout(tmp_path):
    (tmp_path / "JPEGImages").mkdir()
    (tmp_path / "SegmentationClass").mkdir()
    (tmp_path / "ImageSets" / "Segmentation").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        _write_png(tmp_path / "JPEGImages" / f"{name}.png", rng.integers(0, 255, (6, 5, 3)), "RGB")
        mask = np.array([[0, 1, 2, 255, 1]] * 6)
        _write_png(tmp_path / "SegmentationClass" / f"{name}.png", mask, "L")
    (tmp_path / "ImageSets" / "Segmentation" / "train.txt").write_text("a\nb\n")
    ds = SegmentationFolder(tmp_path, "train")
    assert ds.layout == "voc" and len(ds) == 2
    image, mask = ds[1]
    assert image.shape == (3, 6, 5) and mask[0].tolist() == [0, 1, 2, 255, 1]


def test_segmentation_folder_ade_layout_reduce_zero_label(tmp_path):
    (tmp_path / "images" / "validation").mkdir(parents=True)
    (tmp_path / "annotations" / "validation").mkdir(parents=True)
    _write_png(tmp_path / "images" / "validation" / "x.png", np.zeros((4, 4, 3)), "RGB")
    _write_png(tmp_path / "annotations" / "validation" / "x.png", np.array([[0, 1, 2, 150]] * 4), "L")
    ds = SegmentationFolder(tmp_path, "validation", reduce_zero_label=True)
    assert ds[0][1][0].tolist() == [255, 0, 1, 149]


def test_segmentation_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="directory"):
        SegmentationFolder(tmp_path / "missing")
    with pytest.raises(ValueError, match="VOC layout"):
        SegmentationFolder(tmp_path)


# ----------------------------------------------------------------------------------------
# Wide scenes at the training object scale (SegFormer's Table 1c test)


def test_wide_scenes_keep_object_size_in_pixels():
    """A wide view rendered at tiles × 64 px draws every object as many pixels across as
    a standard scene at 64 px: the same object rendered alone in a 64-px scene covers the
    same number of mask pixels (up to its outline)."""
    import numpy as np

    from tutorial_lib.data import Scene, make_wide_scene, render_scene, same_scale_scenes

    for tiles in (2, 3):
        wide = same_scale_scenes(tiles, num_samples=2)
        assert wide.size == (64 * tiles, 64 * tiles) and wide.tiles == tiles
        scene = wide.scene(0)
        assert scene.extent == tiles
        objects = [o for o in scene.objects if o.kind == "disc"]
        assert objects, "no disc in the scene"
        for obj in objects[:3]:
            cx, cy = obj.params[:2]
            # move the disc into one standard scene's unit square
            col, row = int(cx), int(cy)
            from tutorial_lib.data import _shifted

            alone = Scene(scene.background, (_shifted(obj, -col, -row),))
            big = Scene(scene.background, (obj,), float(tiles))
            _, small_mask = render_scene(alone, 64)
            _, wide_mask = render_scene(big, 64 * tiles)
            area_small = int((small_mask == obj.label).sum())
            area_wide = int((wide_mask == obj.label).sum())
            radius_px = obj.params[2] * 64
            assert area_small > 0
            # pixel counts differ only where the disc is cut at a view's border
            if all(radius_px < v * 64 < 64 - radius_px for v in (cx - col, cy - row)):
                assert area_wide == area_small
    rng = np.random.default_rng(0)
    assert len(make_wide_scene(rng, 2).objects) >= 4 * 3  # four views of at least 3 objects
    with pytest.raises(ValueError, match="make_wide_scene: expected tiles"):
        make_wide_scene(rng, 0)


def test_wide_scenes_have_one_background_and_the_standard_scenes_are_unchanged():
    from tutorial_lib.data import SyntheticScenes, make_scene, render_scene

    import numpy as np

    # tiles=1 is the standard scene, drawn exactly as before
    standard = SyntheticScenes(4, size=64, seed=1)
    assert standard.scene(2) == make_scene(np.random.default_rng((1, 2)))
    wide = SyntheticScenes(2, size=128, seed=1, tiles=2)
    image, mask = wide[0]
    assert image.shape == (3, 128, 128) and mask.shape == (128, 128)
    # no seam: the background varies smoothly across the views' border (column 63 | 64)
    background = (mask == 0)
    rows = background[:, 62:66].all(dim=1)
    step = (image[:, rows, 64] - image[:, rows, 63]).abs().max()
    inner = (image[:, rows, 62] - image[:, rows, 61]).abs().max()
    assert step < inner + 0.05
    with pytest.raises(ValueError, match="tiles"):
        SyntheticScenes(2, size=64, tiles=0)
