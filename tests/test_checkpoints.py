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
