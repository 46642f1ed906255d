"""The book's controlled experiments: what is trained, what was recorded, and which
of the papers' claims each result speaks to.

* :data:`CONFIGS` names every trained configuration (the six capstone models of
  chapter 12 and the ablations of chapters 02, 04, 05 and 10); :data:`EXPERIMENTS`
  groups them into one comparison per claim, each in the chapter of the claim.
* ``make experiments`` (``tools/run_experiments.py``) trains every configuration
  with each seed in :data:`SEEDS` under :data:`RECIPE` on
  :func:`tutorial_lib.data.standard_splits` and records, per run, the training
  curve, the validation mIoU and per-class IoU, the boundary-band ("trimap") mIoU,
  the pixel accuracy per object scale and the mIoU at other input sizes, with the
  wall time, the commit and the machine. The record ships as package data
  (``tutorial_lib/results/experiments.json``) and :func:`load_results` reads it, so
  the chapters print results without retraining.
* :func:`summary` gives mean ± sd over the seeds; :data:`CLAIMS` and
  :func:`claims_table` turn the recorded numbers into the verdicts of the appendix
  page "The papers' claims, tested".
"""

from __future__ import annotations

import importlib.resources
import json
import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from torch import nn

from ._validate import check_choice

__all__ = [
    "RECIPE",
    "SEEDS",
    "EVAL_SIZES",
    "TRIMAP_WIDTHS",
    "Config",
    "CONFIGS",
    "Experiment",
    "EXPERIMENTS",
    "build_config",
    "load_results",
    "runs",
    "metric_values",
    "Stat",
    "summary",
    "summary_table",
    "baseline",
    "class_prior_loss",
    "Claim",
    "CLAIMS",
    "claims_table",
]

#: How every configuration is trained (``make experiments``): AdamW with a linear
#: warm-up over the first 10 % of the steps and a poly (power 1) decay, batches of 16
#: scenes at 64×64 drawn from ``num_train`` training scenes; scored on ``num_val``
#: validation scenes (seed 1).
RECIPE: Dict[str, Any] = dict(
    steps=1000,
    batch_size=16,
    lr=3e-3,
    weight_decay=0.01,
    power=1.0,
    aux_weight=0.4,
    train_size=64,
    num_train=4096,
    num_val=256,
)
#: The seeds every configuration is trained with.
SEEDS: Tuple[int, ...] = (0, 1, 2)
#: Input sizes the trained models are also evaluated at (the same validation scenes
#: rendered at each size): ½× to 2× the training size.
EVAL_SIZES: Tuple[int, ...] = (32, 48, 64, 96, 128)
#: Half-widths (pixels) of the boundary bands of the trimap score.
TRIMAP_WIDTHS: Tuple[int, ...] = (1, 2, 4)


@dataclass(frozen=True)
class Config:
    """One trained configuration: a table ``label``, what it is, and how to build it
    (``factory(aux)``; ``aux=True`` adds the auxiliary heads used in training)."""

    label: str
    description: str
    factory: Callable[[bool], nn.Module]


def _deeplab(**overrides: Any) -> Callable[[bool], nn.Module]:
    def build(aux: bool) -> nn.Module:
        from .models.deeplab import DeepLabConfig, DeepLabV3Plus
        from .models.deeplab import XCEPTION_SMALL

        settings = dict(
            num_classes=6,
            output_stride=8,
            separable=True,
            aspp_channels=48,
            aspp_rates=(1, 2, 3),
            low_level_channels=16,
            decoder_channels=48,
            backbone=XCEPTION_SMALL,
        )
        settings.update(overrides)
        return DeepLabV3Plus(DeepLabConfig(**settings))

    return build


def _capstone(name: str) -> Callable[[bool], nn.Module]:
    def build(aux: bool) -> nn.Module:
        from .compare import build_model

        return build_model(name, aux=aux)

    return build


def _segformer_small(aux: bool) -> nn.Module:
    from .compare import capstone_segformer

    return capstone_segformer(embed_dims=(8, 16, 40, 64), decoder_dim=64)


def _segformer_position_table(aux: bool) -> nn.Module:
    from .compare import TRAIN_SIZE, capstone_segformer

    return capstone_segformer(ffn="plain", position_size=TRAIN_SIZE)


def _capstone_configs() -> Dict[str, Config]:
    from .compare import CAPSTONE_MODELS

    return {
        name: Config(spec.label, spec.description, _capstone(name))
        for name, spec in CAPSTONE_MODELS.items()
    }


#: Every configuration ``make experiments`` trains, by name.
CONFIGS: Dict[str, Config] = {
    **_capstone_configs(),
    "deeplab_os8": Config(
        "atrous, OS 8",
        "DeepLabV3 (no decoder): the last two Xception strides replaced by atrous rates 2, 4",
        _deeplab(decoder=False),
    ),
    "deeplab_os16": Config(
        "atrous, OS 16",
        "DeepLabV3 (no decoder): the last Xception stride replaced by atrous rate 2",
        _deeplab(decoder=False, output_stride=16),
    ),
    "deeplab_os32": Config(
        "striding, OS 32",
        "DeepLabV3 (no decoder) with every Xception stride kept: downsample, "
        "convolve, upsample",
        _deeplab(decoder=False, output_stride=32),
    ),
    "aspp_one_rate": Config(
        "ASPP, one rate",
        "DeepLabV3, OS 8, ASPP with a single 3×3 branch (rate 1) beside 1×1 and pooling",
        _deeplab(decoder=False, aspp_rates=(1,)),
    ),
    "aspp_no_pooling": Config(
        "ASPP, no image pooling",
        "DeepLabV3, OS 8, ASPP rates (1, 2, 3) without the image-pooling branch",
        _deeplab(decoder=False, image_pooling=False),
    ),
    "segformer_small": Config(
        "SegFormer, ¼ size",
        "the capstone SegFormer with every width halved again (stages 8/16/40/64, "
        "decoder 64): about as many parameters as the FCN and SETR-Naive",
        _segformer_small,
    ),
    "segformer_position_table": Config(
        "plain FFN + position table",
        "the capstone SegFormer with Mix-FFN's 3×3 convolution removed and a learned "
        "position table per stage (sized for 64×64, resized bilinearly otherwise)",
        _segformer_position_table,
    ),
}


@dataclass(frozen=True)
class Experiment:
    """A comparison of configurations that tests one claim, shown in ``chapter``."""

    title: str
    chapter: str
    configs: Tuple[str, ...]
    question: str


#: The controlled comparisons, by name; every configuration is trained with each seed.
EXPERIMENTS: Dict[str, Experiment] = {
    "output_stride": Experiment(
        "Output stride: atrous convolution vs striding",
        "02",
        ("deeplab_os8", "deeplab_os16", "deeplab_os32"),
        "Does keeping resolution with atrous convolution beat downsample–conv–upsample?",
    ),
    "aspp": Experiment(
        "ASPP: several rates vs one, with and without image pooling",
        "04",
        ("deeplab_os8", "aspp_one_rate", "aspp_no_pooling"),
        "Does sampling at several rates help, and for objects of which scale?",
    ),
    "decoder": Experiment(
        "The DeepLabV3+ decoder vs bilinear upsampling",
        "05",
        ("deeplabv3plus", "deeplab_os8"),
        "Does the decoder recover detail along object boundaries?",
    ),
    "setr_decoders": Experiment(
        "SETR's decoders",
        "07",
        ("setr_naive", "setr_pup", "setr_mla"),
        "Do progressive upsampling and multi-level aggregation beat naive upsampling?",
    ),
    "position": Experiment(
        "Mix-FFN vs a learned position table",
        "10",
        ("segformer", "segformer_position_table"),
        "Does Mix-FFN make position embeddings unnecessary, also at other sizes?",
    ),
    "matched": Experiment(
        "Three designs at about the same number of parameters",
        "12",
        ("fcn", "setr_naive", "segformer_small"),
        "At matched size (0.20–0.25 M parameters), which design learns most?",
    ),
    "capstone": Experiment(
        "The three families side by side",
        "12",
        ("fcn", "deeplabv3plus", "setr_naive", "setr_pup", "setr_mla", "segformer"),
        "How do the designs compare at this scale, for their cost?",
    ),
}


def build_config(name: str, aux: bool = False) -> nn.Module:
    """A fresh, untrained model of configuration ``name`` (a key of
    :data:`CONFIGS`)."""
    check_choice(name, "build_config name", list(CONFIGS))
    return CONFIGS[name].factory(aux)


_RESULTS: Optional[Dict[str, Any]] = None


def load_results() -> Dict[str, Any]:
    """The record ``make experiments`` wrote (package data, read once): ``recipe``,
    ``seeds``, ``commit``, ``wall_seconds``, ``machine`` and ``runs``, a list with
    one entry per (configuration, seed)."""
    global _RESULTS
    if _RESULTS is None:
        path = (
            importlib.resources.files("tutorial_lib")
            / "results"
            / "experiments.json"
        )
        if not path.is_file():
            raise FileNotFoundError(
                "tutorial_lib/results/experiments.json is missing: run `make experiments`"
            )
        _RESULTS = json.loads(path.read_text())
    return _RESULTS


def runs(
    config: str, results: Optional[Dict[str, Any]] = None
) -> List[Dict[str, Any]]:
    """The recorded runs of configuration ``config``, one per seed, in seed order."""
    results = load_results() if results is None else results
    found = sorted(
        (r for r in results["runs"] if r["config"] == config),
        key=lambda r: r["seed"],
    )
    if not found:
        raise ValueError(
            f"runs: no recorded runs of {config!r}; recorded: "
            f"{sorted({r['config'] for r in results['runs']})}"
        )
    return found


def metric_values(
    config: str, metric: str = "miou", results: Optional[Dict[str, Any]] = None
) -> List[float]:
    """One number per seed: ``metric`` is a key path into a run's ``val`` record,
    e.g. ``"miou"``, ``"iou.wire"``, ``"trimap.2"``, ``"scale_accuracy.small"``,
    ``"resolution.128"``, or ``"steps_per_second"``."""
    values = []
    for run in runs(config, results):
        node: Any = run if metric == "steps_per_second" else run["val"]
        for key in metric.split(".") if metric != "steps_per_second" else [metric]:
            if not isinstance(node, dict) or key not in node:
                raise ValueError(
                    f"metric_values: {metric!r} is not recorded for {config!r} "
                    f"(missing {key!r})"
                )
            node = node[key]
        values.append(float(node))
    return values


@dataclass(frozen=True)
class Stat:
    """Mean, sample standard deviation and the values over the seeds."""

    mean: float
    sd: float
    values: Tuple[float, ...]

    def __format__(self, spec: str) -> str:
        spec = spec or ".3f"
        return f"{self.mean:{spec}} ± {self.sd:{spec}}"

    def __str__(self) -> str:
        return format(self, ".3f")


def summary(
    config: str, metric: str = "miou", results: Optional[Dict[str, Any]] = None
) -> Stat:
    """Mean ± sd over the seeds of ``metric`` (see :func:`metric_values`)."""
    values = metric_values(config, metric, results)
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    return Stat(statistics.fmean(values), sd, tuple(values))


def baseline(
    metric: str = "miou", results: Optional[Dict[str, Any]] = None
) -> float:
    """``metric`` (a key path as in :func:`metric_values`) of the model that calls
    every pixel background, on the same validation scenes."""
    results = load_results() if results is None else results
    node: Any = results["baselines"]["all_background"]
    for key in metric.split("."):
        if not isinstance(node, dict) or key not in node:
            raise ValueError(f"baseline: {metric!r} has no all-background value")
        node = node[key]
    return float(node)


def class_prior_loss(results: Optional[Dict[str, Any]] = None) -> float:
    """The cross-entropy of predicting the training pixels' class frequencies
    everywhere: a training loss at or above it means nothing beyond the prior was
    learned."""
    results = load_results() if results is None else results
    return float(results["baselines"]["class_prior_loss"])


def summary_table(
    experiment: str,
    metrics: Sequence[Tuple[str, str]] = (("mIoU", "miou"),),
    results: Optional[Dict[str, Any]] = None,
    configs: Optional[Sequence[str]] = None,
) -> str:
    """A text table, one row per configuration of ``experiment`` (or ``configs``)
    and one column per ``(header, metric)``, each cell mean ± sd over the seeds, and
    a last row for the all-background prediction."""
    check_choice(experiment, "summary_table experiment", list(EXPERIMENTS))
    configs = tuple(EXPERIMENTS[experiment].configs if configs is None else configs)
    n = len(runs(configs[0], results))
    labels = [CONFIGS[c].label for c in configs] + ["all background"]
    header = f"mean ± sd over {n} seeds"
    width = max(len(label) for label in labels + [header]) + 2
    cells = [
        [format(summary(c, m, results), ".3f") for _, m in metrics] for c in configs
    ]
    base = []
    for _, m in metrics:
        try:
            base.append(f"{baseline(m, results):.3f}")
        except ValueError:
            base.append("–")
    cells.append(base)
    col = [
        max(len(h), *(len(row[i]) for row in cells)) + 2
        for i, (h, _) in enumerate(metrics)
    ]
    lines = [
        header.ljust(width) + "".join(h.rjust(w) for (h, _), w in zip(metrics, col))
    ]
    for label, row in zip(labels, cells):
        lines.append(
            label.ljust(width) + "".join(v.rjust(w) for v, w in zip(row, col))
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------
# The papers' claims and their verdicts at this scale


def _difference(
    a: str, b: str, metric: str, results: Optional[Dict[str, Any]]
) -> Tuple[Stat, Stat, List[float]]:
    sa, sb = summary(a, metric, results), summary(b, metric, results)
    paired = [
        x - y for x, y in zip(sa.values, sb.values)
    ]  # same seed, same batches
    return sa, sb, paired


def _verdict_better(
    a: str, b: str, metric: str = "miou", label: str = "mIoU"
) -> Callable[[Optional[Dict[str, Any]]], Tuple[str, str]]:
    """'holds' when ``a`` beats ``b`` for every seed, 'does not show' otherwise."""

    def verdict(results: Optional[Dict[str, Any]]) -> Tuple[str, str]:
        sa, sb, diff = _difference(a, b, metric, results)
        wins = sum(d > 0 for d in diff)
        evidence = (
            f"{label}: {CONFIGS[a].label} {sa}, {CONFIGS[b].label} {sb}; "
            f"better in {wins} of {len(diff)} seeds (mean difference {statistics.fmean(diff):+.3f})"
        )
        if wins == len(diff):
            return "holds", evidence
        if wins == 0:
            return "reversed here", evidence
        return "does not show", evidence

    return verdict


def _verdict_robust(
    a: str, b: str, size: int, train_size: int = 64
) -> Callable[[Optional[Dict[str, Any]]], Tuple[str, str]]:
    """'holds' when ``a`` loses less mIoU than ``b`` from the training size to
    ``size`` for every seed (paired by seed), 'reversed here' when it loses more for
    every seed, 'does not show' otherwise."""

    def verdict(results: Optional[Dict[str, Any]]) -> Tuple[str, str]:
        at = {
            c: (
                metric_values(c, f"resolution.{train_size}", results),
                metric_values(c, f"resolution.{size}", results),
            )
            for c in (a, b)
        }
        change = {c: [t - s for s, t in zip(*at[c])] for c in (a, b)}
        diff = [x - y for x, y in zip(change[a], change[b])]
        wins = sum(d > 0 for d in diff)
        evidence = (
            "; ".join(
                f"{CONFIGS[c].label}: {statistics.fmean(at[c][0]):.3f} → {statistics.fmean(at[c][1]):.3f} "
                f"({statistics.fmean(change[c]):+.3f})"
                for c in (a, b)
            )
            + f"; smaller loss in {wins} of {len(diff)} seeds"
        )
        if wins == len(diff):
            return "holds", evidence
        if wins == 0:
            return "reversed here", evidence
        return "does not show", evidence

    return verdict


def _not_tested(
    reason: str,
) -> Callable[[Optional[Dict[str, Any]]], Tuple[str, str]]:
    return lambda results: ("not tested here", reason)


@dataclass(frozen=True)
class Claim:
    """A claim of one of the papers that the book tests, and how its verdict is
    computed from the recorded results (or a fixed measurement of the library)."""

    paper: str
    claim: str
    chapter: str
    test: str
    verdict: Callable[[Optional[Dict[str, Any]]], Tuple[str, str]] = field(
        repr=False
    )


def _cost_claim(
    text: Callable[[], Tuple[bool, str]],
) -> Callable[[Optional[Dict[str, Any]]], Tuple[str, str]]:
    def verdict(results: Optional[Dict[str, Any]]) -> Tuple[str, str]:
        ok, evidence = text()
        return ("holds" if ok else "does not hold"), evidence

    return verdict


def _separable_cost() -> Tuple[bool, str]:
    from .layers.separable import separable_cost_ratio

    from fractions import Fraction

    ratio = separable_cost_ratio(1024, 3)  # an exact fraction, from counted MACs
    return ratio == Fraction(1, 1024) + Fraction(1, 9), (
        f"cost ratio at N=1024, K=3: {float(ratio):.3f} = 1/N + 1/K² exactly"
    )


def _efficient_attention_cost() -> Tuple[bool, str]:
    from .layers.efficient_attention import efficient_attention_macs

    side, c, sr = 128, 64, 8  # stage 1 of SegFormer at 512×512: 128² tokens, R = 8²
    n, n_r = side * side, (side // sr) ** 2
    full_term, reduced_term = 2 * n * n * c, 2 * n * n_r * c  # QKᵀ and AV
    full = efficient_attention_macs(side, side, c, 1)
    reduced = efficient_attention_macs(side, side, c, sr)
    return full_term // reduced_term == sr**2, (
        f"stage 1 at 512² (128² tokens, C=64, reduction ratio {sr}² = {sr * sr}): attention "
        f"term {full_term / 1e9:.1f} → {reduced_term / 1e9:.2f} GMACs ({full_term // reduced_term}×), "
        f"whole layer {full / 1e9:.1f} → {reduced / 1e9:.2f} GMACs"
    )


def _decoder_share() -> Tuple[bool, str]:
    from .models.segformer import SegFormer, segformer_config
    from .profiling import count_params

    model = SegFormer(segformer_config("b0", num_classes=150))
    share = count_params(model.decode_head) / count_params(model)
    return share < 0.2, f"All-MLP decoder: {share:.1%} of SegFormer-B0's parameters"


#: The claims of the three papers the book touches, in book order.
CLAIMS: Tuple[Claim, ...] = (
    Claim(
        "DeepLabV3+",
        "Atrous convolution keeps resolution and beats downsample–conv–upsample",
        "02",
        "output_stride: OS 8 (atrous) vs OS 32 (striding), mIoU",
        _verdict_better("deeplab_os8", "deeplab_os32"),
    ),
    Claim(
        "DeepLabV3+",
        "A denser output stride (8 vs 16) improves accuracy",
        "02",
        "output_stride: OS 8 vs OS 16, mIoU",
        _verdict_better("deeplab_os8", "deeplab_os16"),
    ),
    Claim(
        "DeepLabV3+",
        "Depthwise separable convolution costs 1/N + 1/K² of a standard one",
        "03",
        "layers.separable.separable_cost_ratio, counted",
        _cost_claim(_separable_cost),
    ),
    Claim(
        "DeepLabV3+",
        "ASPP's several rates capture multi-scale context better than one rate",
        "04",
        "aspp: rates (1, 2, 3) vs one rate, mIoU",
        _verdict_better("deeplab_os8", "aspp_one_rate"),
    ),
    Claim(
        "DeepLabV3+",
        "Image-level pooling adds global context that helps",
        "04",
        "aspp: with vs without image pooling, mIoU",
        _verdict_better("deeplab_os8", "aspp_no_pooling"),
    ),
    Claim(
        "DeepLabV3+",
        "The decoder refines object boundaries",
        "05",
        "decoder: DeepLabV3+ vs no decoder, trimap mIoU (band of 2 px)",
        _verdict_better("deeplabv3plus", "deeplab_os8", "trimap.2", "trimap mIoU"),
    ),
    Claim(
        "SETR",
        "Progressive upsampling (PUP) beats naive upsampling",
        "07",
        "setr_decoders: PUP vs Naive, mIoU",
        _verdict_better("setr_pup", "setr_naive"),
    ),
    Claim(
        "SETR",
        "Multi-level feature aggregation (MLA) beats naive upsampling",
        "07",
        "setr_decoders: MLA vs Naive, mIoU",
        _verdict_better("setr_mla", "setr_naive"),
    ),
    Claim(
        "SegFormer",
        "Sequence reduction cuts attention's O(N²) term by the reduction ratio R",
        "09",
        "layers.efficient_attention, MACs counted",
        _cost_claim(_efficient_attention_cost),
    ),
    Claim(
        "SegFormer",
        "Mix-FFN needs no position encoding and is at least as accurate",
        "10",
        "position: Mix-FFN vs plain FFN + learned table, mIoU at the training size",
        _verdict_better("segformer", "segformer_position_table"),
    ),
    Claim(
        "SegFormer",
        "Without a position encoding, accuracy drops less when the test resolution "
        "differs from training: at 2× (128 px)",
        "10",
        "position: mIoU change from 64 px to the same scenes rendered at 128 px (objects "
        "2× larger in pixels; Table 1c instead tests larger images at the training scale), "
        "paired by seed",
        _verdict_robust("segformer", "segformer_position_table", 128),
    ),
    Claim(
        "SegFormer",
        "Without a position encoding, accuracy drops less when the test resolution "
        "differs from training: at ½× (32 px)",
        "10",
        "position: mIoU change from 64 px to the same scenes rendered at 32 px, paired by seed",
        _verdict_robust("segformer", "segformer_position_table", 32),
    ),
    Claim(
        "SegFormer",
        "The encoder's effective receptive field is large, which is why a light MLP "
        "decoder suffices",
        "13",
        "effective receptive fields of the trained models",
        _not_tested(
            "chapter 13 measures the ERFs of the seed-0 models only and has no decoder "
            "swap, so neither the size across seeds nor the 'why' is tested"
        ),
    ),
    Claim(
        "SegFormer",
        "The lightweight All-MLP decoder is a small part of the model",
        "11",
        "parameters of SegFormer-B0 (150 classes), counted",
        _cost_claim(_decoder_share),
    ),
)


def claims_table(results: Optional[Dict[str, Any]] = None) -> List[Dict[str, str]]:
    """One row per claim of :data:`CLAIMS`: paper, claim, chapter, test, verdict
    (``holds`` / ``does not show`` / ``reversed here`` / ``not tested here``; cost
    claims ``holds`` or ``does not hold``) and the evidence, computed now from the
    recorded results."""
    rows = []
    for claim in CLAIMS:
        verdict, evidence = claim.verdict(results)
        rows.append(
            dict(
                paper=claim.paper,
                claim=claim.claim,
                chapter=claim.chapter,
                test=claim.test,
                verdict=verdict,
                evidence=evidence,
            )
        )
    return rows
