"""The capstone's models side by side: small configurations, shipped checkpoints,
robustness to resolution.

* :data:`CAPSTONE_MODELS` names the small configurations that chapters 12–13 compare
  (the chapter-01 baseline, DeepLabV3+, SETR with each decoder, SegFormer);
  :func:`build_model` builds one untrained.
* ``make experiments`` (``tools/run_experiments.py``) trains each with
  :data:`tutorial_lib.experiments.RECIPE` on ``tutorial_lib.data.standard_splits()``
  with three seeds and ships seed 0's weights (float16 safetensors, auxiliary heads
  dropped) and a JSON of their metrics as package data; :func:`load_trained` and
  :func:`training_record` read them back, so they work after ``pip install``. The
  metrics of every seed are in :func:`tutorial_lib.experiments.load_results`.
* :func:`evaluate_at_resolutions` evaluates a model on the *same* scenes rendered at
  other sizes (:class:`~tutorial_lib.data.SyntheticScenes` draws scenes in
  resolution-free units).
"""

from __future__ import annotations

import contextlib
import importlib.resources
import json
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Sequence

import torch
from torch import nn

from ._validate import check_choice, check_image_batch, check_positive
from .data import SyntheticScenes
from .hub import load_state_dict
from .models.deeplab import deeplabv3plus_small
from .models.fcn import tiny_fcn
from .models.segformer import SegFormer, segformer_config
from .models.setr import setr_mla, setr_naive, setr_pup
from .metrics import confusion_matrix, iou_per_class, mean_iou, pixel_accuracy
from .train import EvalResult, evaluate

__all__ = [
    "ModelSpec",
    "CAPSTONE_MODELS",
    "TRAIN_SIZE",
    "CAPSTONE_SR_RATIOS",
    "build_model",
    "capstone_segformer",
    "inference_state_dict",
    "checkpoint_path",
    "load_trained",
    "training_record",
    "scenes_at",
    "evaluate_at_resolutions",
    "background_baseline",
    "measure_latency",
    "pareto_front",
    "Latency",
    "measure_latencies",
]

#: The resolution the capstone models are trained at (``standard_splits()`` renders 64×64 scenes).
TRAIN_SIZE = 64


def _setr(factory: Callable[..., nn.Module]) -> Callable[[bool], nn.Module]:
    # chapter 07's "tiny" SETR. dynamic_img_size=True makes the encoder interpolate its position
    # embeddings (bilinearly, as SETR's loader does) for inputs other than 64x64; at 64x64 it
    # computes exactly as a fixed-size model.
    return lambda aux: factory(
        "tiny", num_classes=6, img_size=TRAIN_SIZE, aux=aux, dynamic_img_size=True
    )


#: The capstone SegFormer's sequence-reduction ratios, scaled to its 64-pixel input.
#: MiT-B0's (8, 4, 2, 1) are set for 512-pixel images, where every attention of stages
#: 1–3 sees 16 × 16 = 256 pooled keys; at 64 pixels they would leave 2 × 2 = 4 keys in
#: every layer, too few for attention to choose among. Halved, stages 1–3 see
#: 4 × 4 = 16 keys (stage 4 has only 2 × 2 tokens and no reduction, as in B0).
CAPSTONE_SR_RATIOS = (4, 2, 1, 1)


def capstone_segformer(**overrides) -> nn.Module:
    """The capstone's SegFormer: MiT-B0 with every width halved (stages 16/32/80/128
    wide, decoder 128, heads keeping 16 channels) and its sequence reduction scaled to
    the 64-pixel input (:data:`CAPSTONE_SR_RATIOS`), 6 classes; ``overrides`` change
    :class:`~tutorial_lib.models.segformer_config.SegFormerConfig` fields (the ablations of
    :mod:`tutorial_lib.experiments`)."""
    settings = dict(
        embed_dims=(16, 32, 80, 128),
        num_heads=(1, 2, 5, 8),
        sr_ratios=CAPSTONE_SR_RATIOS,
        decoder_dim=128,
        num_classes=6,
    )
    settings.update(overrides)
    return SegFormer(segformer_config("b0", **settings))


def _segformer(aux: bool) -> nn.Module:
    return capstone_segformer()


@dataclass(frozen=True)
class ModelSpec:
    """One capstone model: a short ``label`` for tables, its ``family`` and how to
    build it."""

    label: str
    family: str
    description: str
    factory: Callable[[bool], nn.Module]


#: The capstone's models, in table order.
CAPSTONE_MODELS: Dict[str, ModelSpec] = {
    "fcn": ModelSpec(
        "FCN (baseline)",
        "CNN",
        "chapter 01's tiny FCN, output stride 8",
        lambda aux: tiny_fcn(num_classes=6),
    ),
    "deeplabv3plus": ModelSpec(
        "DeepLabV3+",
        "CNN",
        "small aligned Xception, OS 8, separable ASPP (1, 2, 3) + decoder",
        lambda aux: deeplabv3plus_small(num_classes=6),
    ),
    "setr_naive": ModelSpec(
        "SETR-Naive",
        "ViT",
        "ViT D=64, 4 layers, patch 8; 1x1 conv head",
        _setr(setr_naive),
    ),
    "setr_pup": ModelSpec(
        "SETR-PUP",
        "ViT",
        "ViT D=64, 4 layers, patch 8; progressive upsampling",
        _setr(setr_pup),
    ),
    "setr_mla": ModelSpec(
        "SETR-MLA",
        "ViT",
        "ViT D=64, 4 layers, patch 8; multi-level aggregation",
        _setr(setr_mla),
    ),
    "segformer": ModelSpec(
        "SegFormer",
        "MiT",
        "MiT-B0 at half width + All-MLP decoder (C=128)",
        _segformer,
    ),
}


def build_model(name: str, aux: bool = False) -> nn.Module:
    """An untrained capstone model (``aux=True``: with SETR's auxiliary heads, for
    training)."""
    check_choice(name, "build_model name", list(CAPSTONE_MODELS))
    return CAPSTONE_MODELS[name].factory(bool(aux))


def inference_state_dict(
    model: nn.Module, dtype: torch.dtype = torch.float16
) -> Dict[str, torch.Tensor]:
    """The weights an inference model needs: auxiliary heads dropped, floating
    tensors cast to ``dtype``."""
    return {
        k: (v.to(dtype) if v.is_floating_point() else v).detach().clone()
        for k, v in model.state_dict().items()
        if not k.startswith("auxiliary_heads.")
    }


@contextlib.contextmanager
def checkpoint_path(filename: str) -> Iterator[Any]:
    """A real file path for ``tutorial_lib/checkpoints/<filename>`` (package data),
    as a context manager."""
    resource = importlib.resources.files("tutorial_lib") / "checkpoints" / filename
    if not resource.is_file():
        raise ValueError(
            f"checkpoint_path: expected a shipped file tutorial_lib/checkpoints/{filename}, "
            f"got none (run `make checkpoints`)"
        )
    with importlib.resources.as_file(resource) as path:
        yield path


def load_trained(name: str) -> nn.Module:
    """The capstone model ``name`` with its shipped weights, in eval mode
    (float32)."""
    model = build_model(name, aux=False)
    with checkpoint_path(f"{name}.safetensors") as path:
        state = load_state_dict(path)
    model.load_state_dict(state, strict=True)  # copies cast float16 -> float32
    return model.eval()


def training_record() -> Dict[str, Any]:
    """The JSON ``make checkpoints`` wrote: recipe, and per model its metrics and
    training curves."""
    with checkpoint_path("metrics.json") as path:
        return json.loads(path.read_text())


def scenes_at(dataset: SyntheticScenes, size: int) -> SyntheticScenes:
    """The same scenes as ``dataset`` (same seed and count), rendered at ``size`` ×
    ``size``."""
    if not isinstance(dataset, SyntheticScenes):
        raise ValueError(
            f"scenes_at: expected a SyntheticScenes dataset, got {type(dataset).__name__}"
        )
    check_positive(size, "scenes_at size")
    return SyntheticScenes(dataset.num_samples, size=size, seed=dataset.seed)


def evaluate_at_resolutions(
    model: nn.Module,
    dataset: SyntheticScenes,
    sizes: Sequence[int],
    num_classes: int = 6,
    batch_size: int = 16,
) -> Dict[int, EvalResult]:
    """Evaluate ``model`` on ``dataset``'s scenes rendered at each of ``sizes`` (no
    fine-tuning).

    The labels are rendered at the same size as the images, so every size is scored
    against its own exact ground truth.
    """
    sizes = list(sizes)
    if not sizes:
        raise ValueError(
            "evaluate_at_resolutions: expected at least one size, got none"
        )
    return {
        size: evaluate(
            model, scenes_at(dataset, size), num_classes, batch_size=batch_size
        )
        for size in sizes
    }


def background_baseline(
    dataset, num_classes: int = 6, background: int = 0
) -> EvalResult:
    """The trivial reference every results table needs: the scores of predicting the
    ``background`` class at every pixel of ``dataset`` (pairs ``(image, mask)``)."""
    check_positive(num_classes, "background_baseline num_classes")
    if not 0 <= background < num_classes:
        raise ValueError(
            f"background_baseline: expected a background class in [0, {num_classes}), "
            f"got {background}"
        )
    confusion = sum(
        confusion_matrix(torch.full_like(mask, background), mask, num_classes)
        for _, mask in dataset
    )
    return EvalResult(
        mean_iou(confusion),
        pixel_accuracy(confusion),
        iou_per_class(confusion),
        confusion,
    )


@torch.no_grad()
def measure_latency(
    model: nn.Module, images: torch.Tensor, repeats: int = 5, warmup: int = 1
) -> float:
    """Median wall-clock seconds of one eval-mode forward pass of ``images`` (after
    ``warmup`` passes)."""
    check_image_batch(images, "measure_latency images")
    check_positive(repeats, "measure_latency repeats")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(
            f"measure_latency: expected warmup a non-negative int, got {warmup!r}"
        )
    was_training = model.training
    model.eval()
    times: List[float] = []
    try:
        for i in range(warmup + repeats):
            start = time.perf_counter()
            model(images)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    finally:
        model.train(was_training)
    return statistics.median(times)


@dataclass(frozen=True)
class Latency:
    """Seconds per forward pass over interleaved rounds: the ``median`` of the rounds'
    medians and their ``low`` and ``high`` quartiles."""

    median: float
    low: float
    high: float


@torch.no_grad()
def measure_latencies(
    models: Dict[str, nn.Module],
    images: torch.Tensor,
    rounds: int = 7,
    repeats: int = 5,
    warmup: int = 2,
) -> Dict[str, Latency]:
    """Latency of several models measured in interleaved rounds: every round times
    each model ``repeats`` times (its median kept), the models in a rotated order, so a
    busy spell of the machine slows every model alike instead of the one that happened
    to be running; returns each model's median over the rounds and the quartiles that
    show the spread."""
    check_image_batch(images, "measure_latencies images")
    check_positive(rounds, "measure_latencies rounds")
    if not models:
        raise ValueError("measure_latencies: expected at least one model, got none")
    names = list(models)
    per_round: Dict[str, List[float]] = {n: [] for n in names}
    for name in names:
        measure_latency(models[name], images, repeats=1, warmup=warmup)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            per_round[name].append(
                measure_latency(models[name], images, repeats=repeats, warmup=0)
            )
    out = {}
    for name, times in per_round.items():
        q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
        out[name] = Latency(statistics.median(times), q[0], q[2])
    return out


def pareto_front(costs: Sequence[float], scores: Sequence[float]) -> List[int]:
    """Indices of the models no other model beats on both axes, cheapest first.

    Model ``i`` is dominated if some ``j`` has ``costs[j] <= costs[i]`` and
    ``scores[j] >= scores[i]`` with at least one strict inequality (lower cost is
    better, higher score is better). Models with identical cost and score are both
    kept. Ties in cost are listed by index.
    """
    costs, scores = [float(c) for c in costs], [float(s) for s in scores]
    if len(costs) != len(scores):
        raise ValueError(
            f"pareto_front: expected as many costs as scores, got {len(costs)} and {len(scores)}"
        )
    front = [
        i
        for i in range(len(costs))
        if not any(
            costs[j] <= costs[i]
            and scores[j] >= scores[i]
            and (costs[j], scores[j]) != (costs[i], scores[i])
            for j in range(len(costs))
        )
    ]
    return sorted(front, key=lambda i: (costs[i], i))
