"""The model registry: ``tutorial_lib.models.create_model`` and ``list_models`` (timm-style names)."""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import typing

import pytest
import torch
from torch import nn

import tutorial_lib.models as models
from tutorial_lib.models import create_model, list_models

EXPECTED = {"tiny_fcn", "xception65", "deeplabv3plus_small", "deeplabv3plus_xception65",
            *(f"segformer_b{i}" for i in range(6)), "setr_naive", "setr_pup", "setr_mla",
            "vit_base_patch16_224", "vit_large_patch16_224"}


def discovered_factories() -> dict:
    """The discovery rule of tests/test_robustness.py, written out independently."""
    found = {}
    for info in pkgutil.iter_modules(models.__path__):
        module = importlib.import_module(f"tutorial_lib.models.{info.name}")
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isfunction(obj):
                ret = typing.get_type_hints(obj).get("return")
                if inspect.isclass(ret) and issubclass(ret, nn.Module):
                    found[name] = obj
    return found


def test_list_models_is_sorted_and_complete():
    names = list_models()
    assert names == sorted(names) and len(set(names)) == len(names)
    assert EXPECTED <= set(names)
    assert set(names) == set(discovered_factories())


def test_factories_are_reexported():
    factories = discovered_factories()
    for name in list_models():
        assert getattr(models, name) is factories[name], name
        assert name in models.__all__
    assert {"create_model", "list_models"} <= set(models.__all__)


def test_list_models_pattern():
    assert list_models("segformer_*") == [f"segformer_b{i}" for i in range(6)]
    assert list_models("setr_*") == ["setr_mla", "setr_naive", "setr_pup"]
    assert list_models("nothing*") == []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_name_builds_with_its_defaults_on_meta(name):
    with torch.device("meta"):
        model = create_model(name)
    assert isinstance(model, nn.Module)
    assert isinstance(model, typing.get_type_hints(getattr(models, name))["return"])
    assert next(model.parameters()).is_meta


def test_kwargs_pass_through():
    model = create_model("tiny_fcn", num_classes=3, widths=(8, 16)).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 20, 28)).shape == (1, 3, 20, 28)
    with torch.device("meta"):
        seg = create_model("segformer_b2", num_classes=19, depths=(1, 1, 1, 1), layer_norm_eps=1e-5)
        setr = create_model("setr_pup", size="tiny", num_classes=5, img_size=64)
    assert (seg.config.num_classes, seg.config.depths, seg.config.layer_norm_eps) == (19, (1, 1, 1, 1), 1e-5)
    assert seg.config.embed_dims == (64, 128, 320, 512)
    with torch.no_grad():
        assert setr.eval()(torch.empty(1, 3, 64, 64, device="meta")).shape == (1, 5, 64, 64)
    with pytest.raises(TypeError):  # a wrong keyword is the factory's own error, not hidden
        create_model("tiny_fcn", no_such_argument=1)
    with pytest.raises(ValueError, match="num_classes"):  # and so is its validation
        create_model("tiny_fcn", num_classes=0)


def test_unknown_names_are_refused_with_suggestions():
    with pytest.raises(ValueError) as err:
        create_model("SegFormer-B0")
    message = str(err.value)
    assert "list_models()" in message and "got 'SegFormer-B0'" in message and "'segformer_b0'" in message
    with pytest.raises(ValueError, match=r"did you mean 'deeplabv3plus_small'"):
        create_model("deeplabv3_small")
    with pytest.raises(ValueError, match=r"got 'resnet50'$"):  # nothing close: no suggestion
        create_model("resnet50")
    with pytest.raises(ValueError, match="expected a model name \\(str\\), got int"):
        create_model(3)
