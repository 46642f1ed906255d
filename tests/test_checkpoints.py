"""The shipped capstone checkpoints (seed 0 of each capstone model in ``make experiments``)
and ``tutorial_lib/checkpoints/metrics.json``, written beside them by
``tools/run_experiments.py::write_checkpoint_metrics``.

That the weights score their recorded validation metrics again, and that ``metrics.json``
agrees with ``tutorial_lib/results/experiments.json``, is tested in
``tests/test_experiments.py``.
"""
from __future__ import annotations

import importlib.resources

import pytest
import torch

from tutorial_lib.compare import CAPSTONE_MODELS, build_model, load_trained, training_record
from tutorial_lib.data import CLASS_NAMES
from tutorial_lib.experiments import RECIPE
from tutorial_lib.hub import load_state_dict
from tutorial_lib.profiling import count_params

RECORD = training_record()
FOLDER = importlib.resources.files("tutorial_lib") / "checkpoints"


def test_metrics_json_format():
    assert RECORD["recipe"] == RECIPE, "metrics.json is from another recipe: run make experiments"
    assert RECORD["seed"] == 0 and RECORD["classes"] == list(CLASS_NAMES)
    assert RECORD["weights_dtype"] == "float16"
    assert {"torch", "python"} <= set(RECORD)
    assert set(RECORD["models"]) == set(CAPSTONE_MODELS)
    keys = {"label", "params", "val_miou", "val_pixel_accuracy", "val_iou", "history", "train_seconds",
            "file_bytes"}
    for name, entry in RECORD["models"].items():
        assert set(entry) == keys, name
        assert entry["label"] == CAPSTONE_MODELS[name].label
        assert 0 < entry["val_miou"] <= 1 and 0 < entry["val_pixel_accuracy"] <= 1, name
        assert len(entry["val_iou"]) == len(CLASS_NAMES) and all(0 <= v <= 1 for v in entry["val_iou"]), name
        history = entry["history"]
        assert len(history["train_loss"]) == -(-RECIPE["steps"] // history["loss_every"]), name
        assert history["train_loss"][-1] < history["train_loss"][0], f"{name}: the loss did not fall"
        assert entry["train_seconds"] > 0, name


def test_every_model_is_shipped_small():
    total = 0
    for name in CAPSTONE_MODELS:
        file = FOLDER / f"{name}.safetensors"
        assert file.is_file(), f"{name}: run make experiments"
        size = len(file.read_bytes())
        assert size == RECORD["models"][name]["file_bytes"], f"{name}: the weights are not the recorded ones"
        total += size
    assert total < 8 * 2**20  # a few MB of package data


@pytest.mark.parametrize("name", list(CAPSTONE_MODELS))
def test_checkpoint_is_the_inference_model_in_float16(name):
    with importlib.resources.as_file(FOLDER / f"{name}.safetensors") as path:
        state = load_state_dict(path)
    assert not any(k.startswith("auxiliary_heads.") for k in state), name  # dropped for inference
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float16}
    assert set(state) == set(build_model(name).state_dict())
    model = load_trained(name)
    assert not model.training
    assert count_params(model) == RECORD["models"][name]["params"]
    assert all(p.dtype == torch.float32 for p in model.parameters())
