"""SyntheticScenes determinism and resolution independence; sample image; SegmentationFolder."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tutorial_lib.data import (CLASS_NAMES, SegmentationFolder, SyntheticScenes, render_scene,
                               sample_image, standard_splits)


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
    ds = SyntheticScenes(20, size=128, seed=0)
    wire = CLASS_NAMES.index("wire")
    for i in range(20):
        obj = [o for o in ds.scene(i).objects if o.label == wire]
        assert obj, "each scene contains at least one wire"
        assert obj[0].params[4] * 2 * 128 <= 4, "wires are at most ~4 px wide at 128 px"


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


def test_colour_does_not_decide_the_class():
    ds = SyntheticScenes(200, size=32, seed=0)
    colours = {}
    for i in range(200):
        for obj in ds.scene(i).objects:
            colours.setdefault(obj.label, set()).add(tuple(np.round(obj.colour, 1)))
    shared = set.intersection(*colours.values())
    assert shared, "some colour is used by every object class"


def test_cache_returns_identical_items():
    cached, plain = SyntheticScenes(3, size=16, seed=2, cache=True), SyntheticScenes(3, size=16, seed=2)
    for i in range(3):
        assert torch.equal(cached[i][0], plain[i][0]) and cached[i][0] is cached[i][0]


def test_standard_splits_are_disjoint_seeds():
    train, val = standard_splits()
    assert (train.seed, val.seed) == (0, 1) and len(train) == 512 and len(val) == 128


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
