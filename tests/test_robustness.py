"""Robustness battery: every public model factory and layer either works on awkward inputs or
refuses them with a clear ``ValueError`` (one that says what was expected and what came).

* Factories are discovered: every function in a ``tutorial_lib.models.*`` module's ``__all__``
  whose return annotation is an ``nn.Module``. Each needs an entry in ``MODELS`` (how to build it
  small, and its documented input/output contract); a new factory without one fails
  ``test_every_factory_has_a_spec``. Layers likewise: every ``nn.Module`` class in a
  ``tutorial_lib.layers.*`` module's ``__all__`` needs an entry in ``LAYERS``.
* Shape contracts are checked on the ``meta`` device (shapes only, no arithmetic), so paper-size
  models run at 513×513 in milliseconds; the cheap models also run for real on CPU, where the
  logits must be finite.
* Sizes: 1×1, 31×47, 97×131 and 513×513, plus each model's nominal size. For every size the spec
  says whether the architecture accepts it (fully convolutional models take any size, ViT-based
  ones need multiples of the patch size, SegFormer a minimum size); accepted sizes must give the
  documented output shape, the others a ``ValueError``.
* Property tests (hypothesis) for size formulas not covered elsewhere: the general convolution
  output-size formula (any padding and rate, non-square), ASPP keeping the size for any rates,
  and a separable convolution matching a standard one's output size.
"""
from __future__ import annotations

import importlib
import inspect
import math
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import tutorial_lib.layers as layers_pkg
import tutorial_lib.models as models_pkg

ODD_SIZES: Tuple[Tuple[int, int], ...] = ((1, 1), (31, 47), (97, 131), (513, 513))


def _public(package, predicate) -> Dict[str, Any]:
    found = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if predicate(obj):
                found[name] = obj
    return found


# A factory is a function annotated to return an nn.Module: the same rule the registry
# (tutorial_lib.models.create_model / list_models) uses, so both see the same factories.
_returns_module = models_pkg._is_factory


FACTORIES = _public(models_pkg, _returns_module)
LAYER_CLASSES = _public(layers_pkg, lambda o: inspect.isclass(o) and issubclass(o, nn.Module))


def assert_clear(error: ValueError, context: str) -> None:
    """A clear error names what was expected and what came."""
    text = str(error).lower()
    assert any(w in text for w in ("expected", "needs", "must")) and "got" in text, \
        f"{context}: unclear ValueError message (should say what was expected and what came): {error}"


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------

@dataclass
class ModelSpec:
    kwargs: Dict[str, Any]
    kind: str  # "segmentation" (logits map), "classifier" (B, K) or "backbone" (features, low-level)
    num_classes: int = 6
    in_chans: int = 3
    stride: int = 1  # logits at ceil(H/stride) x ceil(W/stride) (1 = the input size)
    patch: int = 1  # input sides must be multiples of this
    fixed_size: Optional[Tuple[int, int]] = None  # the only accepted size (no position-embedding resizing)
    min_size: int = 1
    nominal: Tuple[int, int] = (64, 64)
    cpu_sizes: Tuple[Tuple[int, int], ...] = ()  # sizes also run for real (cheap models only)
    bad_configs: List[Dict[str, Any]] = field(default_factory=list)

    def accepts(self, h: int, w: int) -> bool:
        if self.fixed_size is not None:
            return (h, w) == self.fixed_size
        return h % self.patch == 0 and w % self.patch == 0 and min(h, w) >= self.min_size


SETR_TINY = dict(size="tiny", num_classes=6, img_size=64)
MIT_SHALLOW = dict(num_classes=6, depths=(1, 1, 1, 1))  # the variant's widths, one block per stage

MODELS: Dict[str, ModelSpec] = {
    "tiny_fcn": ModelSpec(dict(num_classes=6), "segmentation", cpu_sizes=((1, 1), (31, 47), (97, 131), (513, 513)),
                          bad_configs=[dict(num_classes=0), dict(widths=(32, 0)), dict(widths=(32, -4)),
                                       dict(widths=())]),
    "deeplabv3plus_small": ModelSpec(dict(num_classes=6), "segmentation", cpu_sizes=((1, 1), (31, 47), (97, 131)),
                                     bad_configs=[dict(num_classes=0), dict(output_stride=7),
                                                  dict(aspp_rates=(0, 2, 3))]),
    "deeplabv3plus_xception65": ModelSpec(dict(num_classes=6), "segmentation",
                                          bad_configs=[dict(output_stride=32), dict(num_classes=0)]),
    # SegFormer returns logits at 1/4 of the input (documented; fit/evaluate upsample them).
    "segformer_b0": ModelSpec(dict(num_classes=6), "segmentation", stride=4, min_size=29,
                              cpu_sizes=((31, 47), (97, 131)),
                              bad_configs=[dict(num_classes=0), dict(sr_ratios=(8, 4, 2)),
                                           dict(num_heads=(3, 2, 5, 8)), dict(drop_path_rate=1.5)]),
    **{f"segformer_b{i}": ModelSpec(MIT_SHALLOW, "segmentation", stride=4, min_size=29,
                                    bad_configs=[dict(depths=(1, 1, 0, 1))]) for i in range(1, 6)},
    "setr_naive": ModelSpec(SETR_TINY, "segmentation", patch=8, fixed_size=(64, 64), cpu_sizes=((64, 64),),
                            bad_configs=[dict(size="huge"), dict(size="tiny", aux_indices=(99,))]),
    "setr_pup": ModelSpec(SETR_TINY, "segmentation", patch=8, fixed_size=(64, 64),
                          bad_configs=[dict(size="tiny", num_classes=0), dict(size="tiny", img_size=60),
                                       dict(size="tiny", num_heads=5)]),
    "setr_mla": ModelSpec({**SETR_TINY, "dynamic_img_size": True}, "segmentation", patch=8,
                          bad_configs=[dict(size="tiny", mla_indices=(1, 2, 3))]),
    "vit_base_patch16_224": ModelSpec(dict(num_classes=10), "classifier", num_classes=10, fixed_size=(224, 224),
                                      nominal=(224, 224),
                                      bad_configs=[dict(num_classes=-1), dict(img_size=100), dict(patch_size=0),
                                                   dict(mlp_ratio=0)]),
    "vit_large_patch16_224": ModelSpec(dict(num_classes=10, img_size=256, dynamic_img_size=True), "classifier",
                                       num_classes=10, patch=16, nominal=(256, 256)),
    # Xception-65 returns (features at output stride 16, low-level features at stride 4).
    "xception65": ModelSpec(dict(), "backbone", stride=16, bad_configs=[dict(output_stride=12), dict(in_chans=0)]),
}

# Validation gaps found by this battery in code owned by other parts; strict xfail: when the gap
# is closed the test XPASSes and fails, which is the signal to move the case into MODELS above.
KNOWN_GAPS: Dict[str, List[Dict[str, Any]]] = {}


def build(name: str, device: str = "meta", **extra) -> nn.Module:
    with torch.device(device):
        return FACTORIES[name](**{**MODELS[name].kwargs, **extra}).eval()


def check_output(name: str, out: object, h: int, w: int) -> None:
    spec = MODELS[name]
    if spec.kind == "classifier":
        assert isinstance(out, torch.Tensor) and tuple(out.shape) == (1, spec.num_classes), \
            f"{name}: expected class logits (1, {spec.num_classes}), got {getattr(out, 'shape', type(out))}"
        return
    if spec.kind == "backbone":
        features, low_level = out
        assert features.shape[-2:] == (math.ceil(h / spec.stride), math.ceil(w / spec.stride)), \
            f"{name} {h}x{w}: features {tuple(features.shape)}"
        assert low_level.shape[-2:] == (math.ceil(h / 4), math.ceil(w / 4)), f"{name}: low-level {tuple(low_level.shape)}"
        return
    assert isinstance(out, torch.Tensor), f"{name}: expected a logits tensor in eval mode, got {type(out).__name__}"
    expected = (1, spec.num_classes, math.ceil(h / spec.stride), math.ceil(w / spec.stride))
    assert tuple(out.shape) == expected, f"{name} on {h}x{w}: expected logits {expected}, got {tuple(out.shape)}"


def test_every_factory_has_a_spec() -> None:
    assert FACTORIES, "no model factories discovered in tutorial_lib.models"
    missing = sorted(set(FACTORIES) - set(MODELS))
    assert not missing, f"model factories without a robustness spec in tests/test_robustness.py: {missing}"
    stale = sorted(set(MODELS) - set(FACTORIES))
    assert not stale, f"specs for factories that no longer exist: {stale}"


MODEL_SIZE_CASES = [(n, s) for n in sorted(MODELS) for s in (*ODD_SIZES, MODELS[n].nominal)]


@pytest.mark.parametrize("name,size", MODEL_SIZE_CASES, ids=[f"{n}-{h}x{w}" for n, (h, w) in MODEL_SIZE_CASES])
def test_model_shape_contract(name: str, size: Tuple[int, int]) -> None:
    """On the meta device: accepted sizes give the documented output shape, others a clear ValueError."""
    if name not in FACTORIES:
        pytest.skip(f"{name} is not a public factory (see test_every_factory_has_a_spec)")
    model, spec = build(name), MODELS[name]
    h, w = size
    x = torch.empty(1, spec.in_chans, h, w, device="meta")
    if spec.accepts(h, w):
        with torch.no_grad():
            check_output(name, model(x), h, w)
    else:
        with pytest.raises(ValueError) as info:
            model(x)
        assert_clear(info.value, f"{name} on {h}x{w}")


CPU_CASES = [(n, s) for n in sorted(MODELS) for s in MODELS[n].cpu_sizes]


@pytest.mark.parametrize("name,size", CPU_CASES, ids=[f"{n}-{h}x{w}" for n, (h, w) in CPU_CASES])
def test_model_runs_on_cpu(name: str, size: Tuple[int, int]) -> None:
    """The cheap models for real: the documented shape and finite logits."""
    torch.manual_seed(0)
    model, spec = build(name, "cpu"), MODELS[name]
    h, w = size
    with torch.no_grad():
        out = model(torch.randn(1, spec.in_chans, h, w))
    check_output(name, out, h, w)
    assert torch.isfinite(out).all(), f"{name} on {h}x{w}: non-finite logits"


def _bad_inputs(spec: ModelSpec) -> Dict[str, object]:
    h, w = spec.nominal
    c = spec.in_chans
    return {
        "rank 3 (no batch)": torch.empty(c, h, w, device="meta"),
        "rank 5": torch.empty(1, 1, c, h, w, device="meta"),
        "rank 2": torch.empty(h, w, device="meta"),
        f"{c + 1} channels": torch.empty(1, c + 1, h, w, device="meta"),
        "1 channel": torch.empty(1, 1, h, w, device="meta"),
        "a NumPy array": np.zeros((1, c, h, w), dtype=np.float32),
    }


BAD_INPUT_CASES = [(n, k) for n in sorted(MODELS) for k in _bad_inputs(MODELS[n])]


@pytest.mark.parametrize("name,what", BAD_INPUT_CASES, ids=[f"{n}-{k}" for n, k in BAD_INPUT_CASES])
def test_model_rejects_bad_input(name: str, what: str) -> None:
    if name not in FACTORIES:
        pytest.skip(f"{name} is not a public factory")
    model = build(name)
    with pytest.raises(ValueError) as info:
        model(_bad_inputs(MODELS[name])[what])
    assert_clear(info.value, f"{name} given {what}")


BAD_CONFIG_CASES = [(n, i) for n in sorted(MODELS) for i in range(len(MODELS[n].bad_configs))]
GAP_CASES = [pytest.param(n, c, marks=pytest.mark.xfail(strict=True, reason=f"validation gap in {n}"))
             for n, cases in KNOWN_GAPS.items() for c in cases]


@pytest.mark.parametrize("name,index", BAD_CONFIG_CASES,
                         ids=[f"{n}-{MODELS[n].bad_configs[i]}" for n, i in BAD_CONFIG_CASES])
def test_model_rejects_bad_config(name: str, index: int) -> None:
    if name not in FACTORIES:
        pytest.skip(f"{name} is not a public factory")
    config = MODELS[name].bad_configs[index]
    with pytest.raises(ValueError) as info, torch.device("meta"):
        FACTORIES[name](**{**MODELS[name].kwargs, **config})
    assert_clear(info.value, f"{name}({config})")


@pytest.mark.parametrize("name,config", GAP_CASES)
def test_known_validation_gaps(name: str, config: Dict[str, Any]) -> None:
    with pytest.raises(ValueError), torch.device("meta"):
        FACTORIES[name](**{**MODELS[name].kwargs, **config})


# --------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------

@dataclass
class LayerSpec:
    """``build()`` a small instance; ``good(h, w)`` returns the forward arguments for an h×w input;
    ``bad`` maps a description to a function ``(h, w) -> arguments`` that must raise ValueError."""

    build: Callable[[], nn.Module]
    good: Callable[[int, int], tuple]
    out_size: Callable[[int, int], Optional[Tuple[int, ...]]]  # expected shape of the (first) output
    bad: Dict[str, Callable[[int, int], tuple]]
    bad_configs: List[Callable[[], nn.Module]] = field(default_factory=list)
    sizes: Tuple[Tuple[int, int], ...] = ODD_SIZES


def _img(c: int, h: int, w: int) -> torch.Tensor:
    return torch.randn(1, c, h, w)


def _tok(c: int, h: int, w: int) -> torch.Tensor:
    return torch.randn(1, h * w, c)


def _image_bad(c: int) -> Dict[str, Callable[[int, int], tuple]]:
    return {"rank 3": lambda h, w: (torch.randn(c, h, w),),
            "rank 5": lambda h, w: (torch.randn(1, 1, c, h, w),),
            "wrong channels": lambda h, w: (_img(c + 1, h, w),),
            "a NumPy array": lambda h, w: (np.zeros((1, c, h, w), np.float32),)}


def _grid_bad(c: int) -> Dict[str, Callable[[int, int], tuple]]:
    return {"rank 4 image": lambda h, w: (_img(c, h, w), h, w),
            "rank 2": lambda h, w: (torch.randn(h * w, c), h, w),
            "wrong channels": lambda h, w: (_tok(c + 1, h, w), h, w),
            "N != H*W": lambda h, w: (_tok(c, h, w), h + 1, w),
            "H = 0": lambda h, w: (_tok(c, h, w), 0, w)}


def _features(dims: Sequence[int], h: int, w: int) -> List[torch.Tensor]:
    return [_img(c, max(1, math.ceil(h / 2 ** i)), max(1, math.ceil(w / 2 ** i))) for i, c in enumerate(dims)]


def _layer_specs() -> Dict[str, LayerSpec]:
    from tutorial_lib.layers import aspp, atrous, attention, efficient_attention as ea, mix_ffn, \
        overlap_patch_embed as ope, patch_embed as pe, separable
    specs: Dict[str, LayerSpec] = {}
    specs["AtrousConv2d"] = LayerSpec(lambda: atrous.AtrousConv2d(3, 5, 3, rate=4), lambda h, w: (_img(3, h, w),),
                                      lambda h, w: (1, 5, h, w), _image_bad(3),
                                      [lambda: atrous.AtrousConv2d(0, 5), lambda: atrous.AtrousConv2d(3, 5, rate=0)])
    specs["SeparableConv2d"] = LayerSpec(lambda: separable.SeparableConv2d(4, 6, 3, stride=2, rate=2),
                                         lambda h, w: (_img(4, h, w),),
                                         lambda h, w: (1, 6, math.ceil(h / 2), math.ceil(w / 2)), _image_bad(4),
                                         [lambda: separable.SeparableConv2d(4, 0), lambda: separable.SeparableConv2d(4, 6, 0)])
    specs["ASPP"] = LayerSpec(lambda: aspp.ASPP(4, 8, rates=(1, 2, 3)), lambda h, w: (_img(4, h, w),),
                              lambda h, w: (1, 8, h, w), _image_bad(4),
                              [lambda: aspp.ASPP(4, 8, rates=(0, 2)), lambda: aspp.ASPP(0, 8)])
    specs["ImagePooling"] = LayerSpec(lambda: aspp.ImagePooling(4, 8), lambda h, w: (_img(4, h, w),),
                                      lambda h, w: (1, 8, h, w), _image_bad(4))
    specs["PatchEmbed"] = LayerSpec(lambda: pe.PatchEmbed(img_size=32, patch_size=1, in_chans=3, embed_dim=8),
                                    lambda h, w: (_img(3, h, w),), lambda h, w: (1, h * w, 8), _image_bad(3),
                                    [lambda: pe.PatchEmbed(img_size=30, patch_size=16), lambda: pe.PatchEmbed(patch_size=0)])
    specs["OverlapPatchEmbed"] = LayerSpec(lambda: ope.OverlapPatchEmbed(3, 8, 7, 4), lambda h, w: (_img(3, h, w),),
                                           lambda h, w: (1, ope.overlap_output_size(h, 7, 4) * ope.overlap_output_size(w, 7, 4), 8),
                                           _image_bad(3), [lambda: ope.OverlapPatchEmbed(3, 8, 0, 4)])
    specs["Attention"] = LayerSpec(lambda: attention.Attention(8, num_heads=2), lambda h, w: (_tok(8, h, w),),
                                   lambda h, w: (1, h * w, 8),
                                   {"rank 4": lambda h, w: (_img(8, h, w),), "rank 2": lambda h, w: (torch.randn(h * w, 8),),
                                    "wrong channels": lambda h, w: (_tok(9, h, w),)},
                                   [lambda: attention.Attention(9, num_heads=2), lambda: attention.Attention(0)],
                                   sizes=((1, 1), (3, 5), (7, 9)))
    specs["EfficientSelfAttention"] = LayerSpec(lambda: ea.EfficientSelfAttention(8, num_heads=2, sr_ratio=2),
                                                lambda h, w: (_tok(8, h, w), h, w), lambda h, w: (1, h * w, 8), _grid_bad(8),
                                                [lambda: ea.EfficientSelfAttention(9, num_heads=2),
                                                 lambda: ea.EfficientSelfAttention(8, sr_ratio=0)],
                                                sizes=((1, 1), (3, 5), (7, 9), (31, 47)))
    specs["SequenceReductionLiteral"] = LayerSpec(lambda: ea.SequenceReductionLiteral(8, 4, "window"),
                                                  lambda h, w: (_tok(8, h, w), h, w),
                                                  lambda h, w: (1, (h // 2) * (w // 2), 8), _grid_bad(8),
                                                  [lambda: ea.SequenceReductionLiteral(8, 3, "window"),
                                                   lambda: ea.SequenceReductionLiteral(8, 4, "diagonal")],
                                                  sizes=((1, 1), (6, 10), (31, 47)))
    specs["MixFFN"] = LayerSpec(lambda: mix_ffn.MixFFN(8, 32), lambda h, w: (_tok(8, h, w), h, w),
                                lambda h, w: (1, h * w, 8), _grid_bad(8),
                                [lambda: mix_ffn.MixFFN(0, 32), lambda: mix_ffn.MixFFN(8, 32, drop=1.0)],
                                sizes=((1, 1), (3, 5), (31, 47)))
    try:
        from tutorial_lib.layers import all_mlp_decoder as amd
    except ImportError:  # pragma: no cover - the module is part of the SegFormer chapters
        amd = None
    if amd is not None:
        dims = (4, 6, 8, 10)
        feature_bad = {"a tensor, not a list": lambda h, w: (_img(4, h, w),),
                       "three maps": lambda h, w: (_features(dims[:3], h, w),),
                       "wrong channels": lambda h, w: (_features((5, 6, 8, 10), h, w),),
                       "rank 3 map": lambda h, w: ([f[0] for f in _features(dims, h, w)],)}
        specs["AllMLPDecoder"] = LayerSpec(lambda: amd.AllMLPDecoder(dims, 12, 5), lambda h, w: (_features(dims, h, w),),
                                           lambda h, w: (1, 5, h, w), feature_bad,
                                           [lambda: amd.AllMLPDecoder(dims, 0, 5), lambda: amd.AllMLPDecoder(dims, 12, 0)])
        specs["FoldedAllMLPDecoder"] = LayerSpec(lambda: amd.fold_all_mlp_decoder(amd.AllMLPDecoder(dims, 12, 5).eval()),
                                                 lambda h, w: (_features(dims, h, w),), lambda h, w: (1, 5, h, w), feature_bad)
    return specs


LAYERS = _layer_specs()


def test_every_layer_has_a_spec() -> None:
    assert LAYER_CLASSES, "no layer classes discovered in tutorial_lib.layers"
    missing = sorted(set(LAYER_CLASSES) - set(LAYERS))
    assert not missing, f"public layers without a robustness spec in tests/test_robustness.py: {missing}"


LAYER_SIZE_CASES = [(n, s) for n in sorted(LAYERS) for s in LAYERS[n].sizes]


@pytest.mark.parametrize("name,size", LAYER_SIZE_CASES, ids=[f"{n}-{h}x{w}" for n, (h, w) in LAYER_SIZE_CASES])
def test_layer_on_odd_sizes(name: str, size: Tuple[int, int]) -> None:
    spec = LAYERS[name]
    layer = spec.build().eval()
    h, w = size
    try:
        with torch.no_grad():
            out = layer(*spec.good(h, w))
    except ValueError as error:  # refusing a size the layer cannot take is fine, if the message is clear
        assert_clear(error, f"{name} on {h}x{w}")
        return
    out = out[0] if isinstance(out, tuple) else out
    assert tuple(out.shape) == spec.out_size(h, w), f"{name} on {h}x{w}: got {tuple(out.shape)}"
    assert torch.isfinite(out).all()


def test_layers_work_on_a_regular_size() -> None:
    """The odd-size test accepts a clear refusal; here every layer must work on an ordinary size."""
    for name, spec in LAYERS.items():
        layer = spec.build().eval()
        with torch.no_grad():
            out = layer(*spec.good(8, 12))
        out = out[0] if isinstance(out, tuple) else out
        assert tuple(out.shape) == spec.out_size(8, 12), name


# Validation gaps in layers (strict xfail, as KNOWN_GAPS for models): a case listed here must fail
# to raise a clear ValueError; when the gap is closed the case XPASSes and must be moved out.
LAYER_GAPS: set = set()
LAYER_BAD_CASES = [pytest.param(n, k, id=f"{n}-{k}", marks=[pytest.mark.xfail(
    strict=True, reason=f"validation gap: {n} given {k}")] if (n, k) in LAYER_GAPS else [])
    for n in sorted(LAYERS) for k in LAYERS[n].bad]


@pytest.mark.parametrize("name,what", LAYER_BAD_CASES)
def test_layer_rejects_bad_input(name: str, what: str) -> None:
    spec = LAYERS[name]
    layer = spec.build().eval()
    with pytest.raises(ValueError) as info, torch.no_grad():
        layer(*spec.bad[what](8, 12))
    assert_clear(info.value, f"{name} given {what}")


LAYER_CONFIG_CASES = [(n, i) for n in sorted(LAYERS) for i in range(len(LAYERS[n].bad_configs))]


@pytest.mark.parametrize("name,index", LAYER_CONFIG_CASES, ids=[f"{n}-{i}" for n, i in LAYER_CONFIG_CASES])
def test_layer_rejects_bad_config(name: str, index: int) -> None:
    with pytest.raises(ValueError) as info:
        LAYERS[name].bad_configs[index]()
    assert_clear(info.value, f"{name} bad configuration #{index}")


# --------------------------------------------------------------------------------------------
# Size formulas (hypothesis)
# --------------------------------------------------------------------------------------------

@settings(max_examples=80, deadline=None)
@given(h=st.integers(1, 60), w=st.integers(1, 60), k=st.integers(1, 7), stride=st.integers(1, 4),
       padding=st.integers(0, 6), rate=st.integers(1, 5))
def test_conv_output_size_formula(h: int, w: int, k: int, stride: int, padding: int, rate: int) -> None:
    """floor((n + 2p - r(k-1) - 1)/s) + 1 for any padding and rate, per side, against PyTorch."""
    from tutorial_lib.layers.atrous import conv_output_size

    span = rate * (k - 1) + 1
    if min(h, w) + 2 * padding < span:  # PyTorch refuses a kernel larger than the padded input
        with pytest.raises(ValueError):
            conv_output_size(min(h, w), k, stride, padding, rate)
        return
    out = F.conv2d(torch.zeros(1, 1, h, w), torch.zeros(1, 1, k, k), stride=stride, padding=padding, dilation=rate)
    assert out.shape[-2:] == (conv_output_size(h, k, stride, padding, rate), conv_output_size(w, k, stride, padding, rate))


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 24), w=st.integers(1, 24), rates=st.lists(st.integers(1, 30), min_size=1, max_size=4),
       separable=st.booleans(), pooling=st.booleans())
def test_aspp_padding_keeps_size(h: int, w: int, rates: List[int], separable: bool, pooling: bool) -> None:
    """Every ASPP branch pads by its rate, so any rates (even larger than the map) keep H×W."""
    from tutorial_lib.layers.aspp import ASPP

    module = ASPP(3, 4, rates=rates, separable=separable, image_pooling=pooling).eval()
    with torch.no_grad():
        out = module(torch.randn(1, 3, h, w))
    assert out.shape == (1, 4, h, w)


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), k=st.sampled_from([1, 3, 5]), stride=st.integers(1, 3),
       rate=st.integers(1, 4))
def test_separable_matches_standard_conv_size(h: int, w: int, k: int, stride: int, rate: int) -> None:
    """A separable convolution has the output size of the standard convolution it replaces."""
    from tutorial_lib.layers.atrous import AtrousConv2d
    from tutorial_lib.layers.separable import SeparableConv2d

    x = torch.randn(1, 2, h, w)
    with torch.no_grad():
        sep = SeparableConv2d(2, 3, k, stride=stride, rate=rate).eval()(x)
        std = AtrousConv2d(2, 3, k, rate=rate, stride=stride).eval()(x)
    assert sep.shape == std.shape == (1, 3, math.ceil(h / stride), math.ceil(w / stride))
