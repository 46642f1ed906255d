"""The shipped capstone checkpoints (``make checkpoints``) reproduce the metrics stored beside them."""
from __future__ import annotations

import importlib.resources

import pytest
import torch

from tutorial_lib.compare import CAPSTONE_MODELS, load_trained, training_record
from tutorial_lib.data import CLASS_NAMES, standard_splits
from tutorial_lib.metrics import confusion_matrix, mean_iou
from tutorial_lib.profiling import count_params
from tutorial_lib.train import RECIPE_SMALL, evaluate

RECORD = training_record()


@pytest.fixture(scope="module")
def val():
    return standard_splits()[1]


def test_every_model_is_shipped_small_with_its_record():
    folder = importlib.resources.files("tutorial_lib") / "checkpoints"
    total = 0
    for name in CAPSTONE_MODELS:
        file = folder / f"{name}.safetensors"
        assert file.is_file(), f"{name}: run make checkpoints"
        total += len(file.read_bytes())
        assert name in RECORD["models"]
    assert total < 8 * 2 ** 20  # a few MB of package data
    assert RECORD["recipe"] == RECIPE_SMALL and RECORD["classes"] == list(CLASS_NAMES)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CAPSTONE_MODELS))
def test_shipped_checkpoint_reproduces_its_metrics(name, val):
    stored = RECORD["models"][name]
    model = load_trained(name)
    assert count_params(model) == stored["params"]
    result = evaluate(model, val, len(CLASS_NAMES))
    # tolerance: a handful of pixels may flip between CPU kernels / thread counts
    assert result.miou == pytest.approx(stored["val_miou"], abs=1e-3)
    assert result.pixel_accuracy == pytest.approx(stored["val_pixel_accuracy"], abs=1e-3)
    torch.testing.assert_close(result.iou.nan_to_num(-1).float(), torch.tensor(stored["val_iou"]).nan_to_num(-1),
                               atol=3e-3, rtol=0)
    # float16 storage costs (almost) nothing against the float32 weights at the end of training
    assert stored["val_miou"] == pytest.approx(stored["val_miou_float32"], abs=5e-3)
    # the model learned something: better than predicting background everywhere
    masks = torch.stack([val[i][1] for i in range(len(val))])
    assert result.miou > mean_iou(confusion_matrix(torch.zeros_like(masks), masks, len(CLASS_NAMES))) + 0.03


@pytest.mark.slow
def test_chapter13_erf_findings():
    """Chapter 13: at 64 px SegFormer's ERF is larger than DeepLabV3+'s at initialisation, but after
    training its 90 % radius is not, and its 50 % radius is much smaller (mass concentrated near the pixel)."""
    from tutorial_lib.compare import build_model
    from tutorial_lib.data import SyntheticScenes
    from tutorial_lib.erf import effective_receptive_field, erf_radius

    images = torch.stack([SyntheticScenes(8, size=64, seed=1)[i][0] for i in range(8)])
    r = {}
    for name in ("deeplabv3plus", "segformer"):
        for trained in (False, True):
            torch.manual_seed(0)
            model = load_trained(name) if trained else build_model(name)
            erf = effective_receptive_field(model, images, reduce="predicted")
            r[name, trained] = (erf_radius(erf, 0.5), erf_radius(erf, 0.9))
    assert r["segformer", False][1] > r["deeplabv3plus", False][1] + 5
    assert r["segformer", True][1] <= r["deeplabv3plus", True][1]
    assert r["segformer", True][0] < 0.5 * r["deeplabv3plus", True][0]


@pytest.mark.slow
def test_chapter13_resolution_findings():
    """Chapter 13: doubling the resolution costs DeepLabV3+ more mIoU than SegFormer; SETR-PUP does not degrade."""
    from tutorial_lib.compare import evaluate_at_resolutions
    from tutorial_lib.data import SyntheticScenes

    scenes = SyntheticScenes(24, size=64, seed=1)
    change = {}
    for name in ("deeplabv3plus", "setr_pup", "segformer"):
        res = evaluate_at_resolutions(load_trained(name), scenes, [64, 128])
        change[name] = res[128].miou - res[64].miou
    assert change["deeplabv3plus"] < change["segformer"] - 0.02
    assert abs(change["segformer"]) < 0.03
    assert change["setr_pup"] > 0
