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
from .stats import Effect, paired_effect, verdict

__all__ = [
    "RECIPE",
    "SEEDS",
    "EVAL_SIZES",
    "TRIMAP_WIDTHS",
    "INTERIOR_MARGIN",
    "SAME_SCALE_TILES",
    "MORE_SEEDS",
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
    "common_size",
    "class_prior_loss",
    "common_seeds",
    "paired",
    "verdict_text",
    "decoder_shares",
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
#: The seeds a configuration is trained with unless it names others.
SEEDS: Tuple[int, ...] = (0, 1, 2)
#: Input sizes the trained models are also evaluated at (the same validation scenes
#: rendered at each size, so objects grow with the size): ½× to 2× the training size.
EVAL_SIZES: Tuple[int, ...] = (32, 48, 64, 96, 128)
#: Half-widths (pixels) of the boundary bands of the trimap score.
TRIMAP_WIDTHS: Tuple[int, ...] = (1, 2, 4)
#: Object pixels farther than this from every label boundary are an object's
#: interior, the control against which the decoder's gain in a boundary band is
#: measured (background interiors are right for every model, so they are left out).
INTERIOR_MARGIN = 4
#: Wide validation views (:func:`tutorial_lib.data.same_scale_scenes`) of 2×2 and 3×3
#: standard scenes, 128 and 192 px at the training object scale, scored whole and by
#: 64-px sliding windows (stride 32): SegFormer's Table 1c at this scale.
SAME_SCALE_TILES: Tuple[int, ...] = (2, 3)


@dataclass(frozen=True)
class Config:
    """One trained configuration: a table ``label``, what it is, how to build it
    (``factory(aux)``; ``aux=True`` adds the auxiliary heads used in training), the
    scene size it is trained and scored at, and its seeds."""

    label: str
    description: str
    factory: Callable[[bool], nn.Module]
    train_size: int = 64
    seeds: Tuple[int, ...] = SEEDS


def _xception_wide() -> Any:
    from .models.xception import XceptionConfig

    # XCEPTION_SMALL (stem 16, entry 16/24/32, middle 32, exit 48/96) about 1.7× wider
    return XceptionConfig(
        stem=(24, 24),
        entry=((24, 24, 24), (40, 40, 40), (56, 56, 56)),
        middle=(56, 56, 56),
        middle_units=1,
        exit=((56, 80, 80), (112, 112, 160)),
    )


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
        if settings["backbone"] == "wide":
            settings["backbone"] = _xception_wide()
        return DeepLabV3Plus(DeepLabConfig(**settings))

    return build


def _capstone(name: str) -> Callable[[bool], nn.Module]:
    def build(aux: bool) -> nn.Module:
        from .compare import build_model

        return build_model(name, aux=aux)

    return build


def _segformer(**overrides: Any) -> Callable[[bool], nn.Module]:
    def build(aux: bool) -> nn.Module:
        from .compare import TRAIN_SIZE, capstone_segformer

        settings = dict(overrides)
        if settings.get("position_size") == "train":
            settings["position_size"] = TRAIN_SIZE
        return capstone_segformer(**settings)

    return build


def _capstone_configs() -> Dict[str, Config]:
    from .compare import CAPSTONE_MODELS

    return {
        name: Config(spec.label, spec.description, _capstone(name))
        for name, spec in CAPSTONE_MODELS.items()
    }


#: Seeds of the comparisons whose spread needs more than three (ASPP's rates).
MORE_SEEDS: Tuple[int, ...] = (0, 1, 2, 3, 4)

#: Every configuration ``make experiments`` trains, by name.
CONFIGS: Dict[str, Config] = {
    **_capstone_configs(),
    "deeplab_os8": Config(
        "atrous, OS 8",
        "DeepLabV3 (no decoder): the last two Xception strides replaced by atrous "
        "rates 2, 4; an 8×8 feature map at 64 px",
        _deeplab(decoder=False),
        seeds=MORE_SEEDS,
    ),
    "deeplab_os16": Config(
        "atrous, OS 16 (64 px)",
        "DeepLabV3 (no decoder), last stride replaced by atrous rate 2: a 4×4 map "
        "at 64 px, a regime shown on purpose (too coarse to test the claim)",
        _deeplab(decoder=False, output_stride=16),
    ),
    "deeplab_os32": Config(
        "striding, OS 32 (64 px)",
        "DeepLabV3 (no decoder) with every Xception stride kept: a 2×2 map at 64 px, "
        "a regime shown on purpose (too coarse to test the claim)",
        _deeplab(decoder=False, output_stride=32),
    ),
    "deeplab_os8_128": Config(
        "atrous, OS 8 (128 px)",
        "DeepLabV3 (no decoder), OS 8, trained and scored on the same scenes rendered "
        "at 128 px: a 16×16 feature map",
        _deeplab(decoder=False),
        train_size=128,
    ),
    "deeplab_os16_128": Config(
        "atrous, OS 16 (128 px)",
        "DeepLabV3 (no decoder), OS 16, at 128 px: an 8×8 feature map",
        _deeplab(decoder=False, output_stride=16),
        train_size=128,
    ),
    "deeplabv3plus_128": Config(
        "DeepLabV3+ (128 px)",
        "the capstone DeepLabV3+ (OS 8 encoder + decoder), trained and scored on the "
        "same scenes rendered at 128 px, where objects are 10–30 px in radius and "
        "their insides lie away from their outlines",
        _capstone("deeplabv3plus"),
        train_size=128,
    ),
    "deeplabv3plus_wide": Config(
        "DeepLabV3+, wide",
        "the capstone DeepLabV3+ with the Xception about 1.7× wider and ASPP and decoder "
        "80 channels wide: about as many parameters as the FCN, SETR-PUP and the "
        "quarter-width SegFormer, and about as many MACs as the FCN and SegFormer",
        _deeplab(
            aspp_channels=80,
            decoder_channels=80,
            low_level_channels=24,
            backbone="wide",
        ),
    ),
    "aspp_same_rate": Config(
        "ASPP, rates (1, 1, 1)",
        "DeepLabV3, OS 8, ASPP with its three 3×3 branches all at rate 1: the same "
        "branches and parameters as rates (1, 2, 3), only the rates differ",
        _deeplab(decoder=False, aspp_rates=(1, 1, 1)),
        seeds=MORE_SEEDS,
    ),
    "segformer_small": Config(
        "SegFormer, quarter width",
        "the capstone SegFormer with every width halved again (stages 8/16/40/64, "
        "decoder 64): about as many parameters as the FCN and the SETRs",
        _segformer(embed_dims=(8, 16, 40, 64), decoder_dim=64),
    ),
    "segformer_mix_table": Config(
        "Mix-FFN + position table",
        "the capstone SegFormer (Mix-FFN) with a learned position table added to each "
        "stage (sized for 64×64, resized bilinearly otherwise)",
        _segformer(position_size="train"),
    ),
    "segformer_plain": Config(
        "plain FFN, no position code",
        "the capstone SegFormer with Mix-FFN's 3×3 depthwise convolution removed and "
        "no position table: nothing tells a token where it is",
        _segformer(ffn="plain"),
    ),
    "segformer_position_table": Config(
        "plain FFN + position table",
        "the capstone SegFormer with Mix-FFN's 3×3 convolution removed and a learned "
        "position table per stage (sized for 64×64, resized bilinearly otherwise): "
        "the 'PE' arm of SegFormer's Table 1c",
        _segformer(ffn="plain", position_size="train"),
    ),
}


@dataclass(frozen=True)
class Experiment:
    """A comparison of configurations that tests one claim, shown in ``chapter``."""

    title: str
    chapter: str
    configs: Tuple[str, ...]
    question: str


#: The controlled comparisons, by name.
EXPERIMENTS: Dict[str, Experiment] = {
    "output_stride": Experiment(
        "Output stride 8 vs 16, at 128 px",
        "02",
        ("deeplab_os8_128", "deeplab_os16_128"),
        "Does a denser feature map (16×16 vs 8×8) help, and where?",
    ),
    "output_stride_64": Experiment(
        "Output stride at 64 px: the regime where the map is too coarse",
        "02",
        ("deeplab_os8", "deeplab_os16", "deeplab_os32"),
        "What happens when the feature map has 4×4 or 2×2 cells?",
    ),
    "aspp": Experiment(
        "ASPP: rates (1, 2, 3) vs (1, 1, 1), same parameters",
        "04",
        ("deeplab_os8", "aspp_same_rate"),
        "Does sampling at several rates help, and for objects of which scale?",
    ),
    "decoder": Experiment(
        "The DeepLabV3+ decoder vs bilinear upsampling, at 128 px",
        "05",
        ("deeplabv3plus_128", "deeplab_os8_128"),
        "Does the decoder recover detail along object boundaries more than inside?",
    ),
    "setr_decoders": Experiment(
        "SETR's decoders",
        "07",
        ("setr_naive", "setr_pup", "setr_mla"),
        "Do progressive upsampling and multi-level aggregation beat naive upsampling?",
    ),
    "position": Experiment(
        "Mix-FFN and a position table, two factors",
        "10",
        (
            "segformer",
            "segformer_mix_table",
            "segformer_plain",
            "segformer_position_table",
        ),
        "Does Mix-FFN make position embeddings unnecessary, also on larger images?",
    ),
    "matched": Experiment(
        "Each family's strongest design at about the same number of parameters",
        "12",
        ("fcn", "deeplabv3plus_wide", "setr_pup", "segformer_small"),
        "At matched size (0.20–0.26 M parameters), which design learns most?",
    ),
    "matched_macs": Experiment(
        "Each family's strongest design at about the same computation",
        "12",
        ("fcn", "deeplabv3plus_wide", "setr_pup", "segformer"),
        "At matched work (24–38 M MACs per 64×64 image), which design learns most?",
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


def common_size(configs: Sequence[str]) -> Optional[int]:
    """The training size (pixels) shared by ``configs``, or None if they differ."""
    sizes = {CONFIGS[c].train_size for c in configs}
    return sizes.pop() if len(sizes) == 1 else None


def baseline(
    metric: str = "miou",
    results: Optional[Dict[str, Any]] = None,
    size: Optional[int] = None,
) -> float:
    """``metric`` (a key path as in :func:`metric_values`) of the model that calls
    every pixel background, on the validation scenes rendered at ``size`` pixels
    (default: the recipe's training size)."""
    results = load_results() if results is None else results
    recorded = results.get("baselines", {})
    if size is None or size == RECIPE["train_size"]:
        node: Any = recorded.get("all_background")
    else:
        node = recorded.get("all_background_by_size", {}).get(str(size))
    if node is None:
        raise ValueError(
            "baseline: the record has no all-background baseline"
            + ("" if size is None else f" at {size} px")
            + " (run `make experiments`)"
        )
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
    counts = sorted({len(runs(c, results)) for c in configs})
    seeds = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
    # the baseline is scored on the scenes the configurations were scored on
    size = common_size(configs)
    base_label = "all background" + (
        "" if size is not None else f" ({RECIPE['train_size']} px)"
    )
    labels = [CONFIGS[c].label for c in configs] + [base_label]
    header = f"mean ± sd over {seeds} seeds"
    width = max(len(label) for label in labels + [header]) + 2
    cells = [
        [format(summary(c, m, results), ".3f") for _, m in metrics] for c in configs
    ]
    base = []
    for _, m in metrics:
        try:
            base.append(f"{baseline(m, results, size):.3f}")
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
# The papers' claims and their verdicts at this scale: one rule (tutorial_lib.stats)


def common_seeds(
    configs: Sequence[str], results: Optional[Dict[str, Any]] = None
) -> List[int]:
    """The seeds recorded for every configuration of ``configs``, in order: the pairs
    of a paired comparison."""
    sets = [{r["seed"] for r in runs(c, results)} for c in configs]
    return sorted(set.intersection(*sets))


def _per_seed(
    config: str,
    metric: str,
    seeds: Sequence[int],
    results: Optional[Dict[str, Any]],
) -> List[float]:
    values = dict(
        zip(
            [r["seed"] for r in runs(config, results)],
            metric_values(config, metric, results),
        )
    )
    return [values[s] for s in seeds]


def paired(
    a: str,
    b: str,
    metric: str = "miou",
    results: Optional[Dict[str, Any]] = None,
    minus: Optional[str] = None,
    metric_b: Optional[str] = None,
) -> Effect:
    """The paired effect (:func:`tutorial_lib.stats.paired_effect`) of configuration
    ``a`` over ``b`` on ``metric``, seed by seed over their common seeds. With
    ``minus``, a second metric: the effect on ``metric`` minus the effect on
    ``minus`` (e.g. the decoder's gain in a boundary band minus its gain inside).
    ``metric_b`` reads another metric of ``b`` (e.g. the ERF of another model's
    corresponding stage)."""
    seeds = common_seeds((a, b), results)
    diff = [
        x - y
        for x, y in zip(
            _per_seed(a, metric, seeds, results),
            _per_seed(b, metric if metric_b is None else metric_b, seeds, results),
        )
    ]
    if minus is not None:
        control = [
            x - y
            for x, y in zip(
                _per_seed(a, minus, seeds, results),
                _per_seed(b, minus, seeds, results),
            )
        ]
        diff = [d - c for d, c in zip(diff, control)]
    return paired_effect(diff)


def verdict_text(effect: Effect) -> str:
    """The verdict word of :func:`tutorial_lib.stats.verdict`, with the minimum
    detectable effect when the seeds cannot decide: ``inconclusive (MDE 0.066)``."""
    word = verdict(effect)
    return f"{word} (MDE {effect.mde:.3f})" if word == "inconclusive" else word


@dataclass(frozen=True)
class Claim:
    """A claim of one of the papers, the paper's own test of it, the book's analogue,
    and how the verdict is computed: ``effect(results)`` returns the paired
    :class:`~tutorial_lib.stats.Effect` (positive in the claimed direction) and a
    sentence of evidence; ``exact`` claims are counted, not trained; a claim with
    ``not_tested`` set gets no verdict, and that text says why."""

    paper: str
    claim: str
    chapter: str
    paper_test: str
    test: str
    effect: Optional[Callable[[Optional[Dict[str, Any]]], Tuple[Effect, str]]] = (
        field(default=None, repr=False)
    )
    exact: Optional[Callable[[], Tuple[bool, str]]] = field(
        default=None, repr=False
    )
    not_tested: str = ""


def _better(
    a: str, b: str, metric: str = "miou", label: str = "mIoU"
) -> Callable[[Optional[Dict[str, Any]]], Tuple[Effect, str]]:
    def effect(results: Optional[Dict[str, Any]]) -> Tuple[Effect, str]:
        e = paired(a, b, metric, results)
        sa, sb = summary(a, metric, results), summary(b, metric, results)
        return e, (
            f"{label}: {CONFIGS[a].label} {sa}, {CONFIGS[b].label} {sb} "
            f"({e.n} paired seeds)"
        )

    return effect


def _boundary_gain(
    width: int,
) -> Callable[[Optional[Dict[str, Any]]], Tuple[Effect, str]]:
    band = f"boundary.{width}.band_accuracy"
    inside = "boundary.object_interior_accuracy"
    a, b = "deeplabv3plus_128", "deeplab_os8_128"

    def effect(results: Optional[Dict[str, Any]]) -> Tuple[Effect, str]:
        e = paired(a, b, band, results, minus=inside)
        gb = paired(a, b, band, results)
        gi = paired(a, b, inside, results)
        return e, (
            f"128 px. Pixel accuracy gain of the decoder within {width} px of a "
            f"boundary {gb.mean:+.3f}; on object pixels more than {INTERIOR_MARGIN} px "
            f"inside {gi.mean:+.3f} (the decoder loses a little there)"
            if gi.mean < 0
            else f"128 px. Pixel accuracy gain of the decoder within {width} px of a "
            f"boundary {gb.mean:+.3f}; on object pixels more than {INTERIOR_MARGIN} px "
            f"inside {gi.mean:+.3f}"
        )

    return effect


def _sliding_drop(
    tiles: int,
) -> Callable[[Optional[Dict[str, Any]]], Tuple[Effect, str]]:
    whole = f"same_scale.{tiles}.whole"
    slide = f"same_scale.{tiles}.sliding"

    def effect(results: Optional[Dict[str, Any]]) -> Tuple[Effect, str]:
        a, b = "segformer", "segformer_position_table"
        # positive when Mix-FFN loses less going from sliding windows to the whole image
        e = paired(a, b, whole, results, minus=slide)
        text = "; ".join(
            f"{CONFIGS[c].label}: sliding {summary(c, slide, results).mean:.3f}, "
            f"whole {summary(c, whole, results).mean:.3f}"
            for c in (a, b)
        )
        # the table's own part of the drop
        table_plain = paired("segformer_plain", b, whole, results, minus=slide)
        table_mix = paired(a, "segformer_mix_table", whole, results, minus=slide)
        ffn = paired(a, "segformer_plain", whole, results, minus=slide)
        wider = paired(
            a,
            b,
            f"same_scale.{tiles + 1}.whole",
            results,
            minus=f"same_scale.{tiles + 1}.sliding",
        )
        return e, (
            f"{tiles * 64}-px views at the training scale. {text}. The 2×2 separates "
            f"the causes: the table's own part of the drop {table_plain:+.3f} (plain "
            f"FFN) and {table_mix:+.3f} (Mix-FFN); Mix-FFN vs plain FFN, neither with "
            f"a table, {ffn:+.3f}. On {(tiles + 1) * 64}-px views: {wider:+.3f}"
        )

    return effect


def _separable_cost() -> Tuple[bool, str]:
    from fractions import Fraction

    from .layers.separable import separable_cost_ratio

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
        f"stage 1 at 512² (128² tokens, C=64, reduction ratio {sr}² = {sr * sr}): "
        f"attention term {full_term / 1e9:.1f} → {reduced_term / 1e9:.2f} GMACs "
        f"({full_term // reduced_term}×), whole layer {full / 1e9:.1f} → "
        f"{reduced / 1e9:.2f} GMACs"
    )


def decoder_shares(size: int = 512) -> Tuple[float, float]:
    """The All-MLP decoder's share of SegFormer-B0's parameters and of its MACs at a
    ``size × size`` input (150 classes)."""
    import torch

    from .models.segformer import SegFormer, segformer_config
    from .profiling import count_macs, count_params

    model = SegFormer(segformer_config("b0", num_classes=150)).eval()
    params = count_params(model.decode_head) / count_params(model)
    counted = count_macs(model, torch.zeros(1, 3, size, size))
    return params, counted.by_module["decode_head"] / counted.total


def _decoder_params() -> Tuple[bool, str]:
    params, _ = decoder_shares()
    return (
        params < 0.2,
        f"All-MLP decoder: {params:.1%} of SegFormer-B0's parameters",
    )


def _decoder_macs() -> Tuple[bool, str]:
    _, macs = decoder_shares()
    return macs < 0.2, (
        f"All-MLP decoder: {macs:.0%} of SegFormer-B0's MACs at 512×512 (it works at "
        "¼ resolution with C = 256 channels)"
    )


#: The claims of the three papers the book touches, in book order.
CLAIMS: Tuple[Claim, ...] = (
    Claim(
        "DeepLabV3+",
        "Atrous convolution keeps resolution and beats downsample–conv–upsample",
        "02",
        "DeepLabv3 Table 1: output stride 8…256 on PASCAL VOC at 513 px (17×17 "
        "maps at OS 32)",
        "OS 8 (atrous) vs OS 32 (striding)",
        not_tested="the striding arm's feature map would be 4×4 at 128 px and is 2×2 "
        "at 64 px, too coarse for the comparison to mean anything; chapter 02 shows "
        "that regime on purpose",
    ),
    Claim(
        "DeepLabV3+",
        "A denser output stride (8 vs 16) improves accuracy",
        "02",
        "Table 3: one model trained at OS 16, evaluated at OS 8 vs OS 16: +1.3 mIoU "
        "for 3.4× the Multiply-Adds",
        "OS 8 vs OS 16, each trained at its own OS at 128 px (16×16 vs 8×8 maps), "
        "mIoU; ASPP rates fixed in feature cells, so the OS-16 arm's ASPP reaches "
        "twice as far in pixels; an effect set by wires one cell wide at OS 16, not "
        "comparable in size with the paper's",
        _better("deeplab_os8_128", "deeplab_os16_128"),
    ),
    Claim(
        "DeepLabV3+",
        "Depthwise separable convolution costs 1/N + 1/K² of a standard one",
        "03",
        "§3.1, the cost formula of MobileNet",
        "layers.separable.separable_cost_ratio, MACs counted",
        exact=_separable_cost,
    ),
    Claim(
        "DeepLabV3+",
        "ASPP's several rates capture multi-scale context better than one rate",
        "04",
        "DeepLab v2's single large rate (LargeFOV) vs ASPP; DeepLabv3 §3.3 keeps "
        "ASPP with rates (6, 12, 18)",
        "rates (1, 2, 3) vs (1, 1, 1), the same branches and parameters, mIoU, on "
        "the 8×8 map of OS 8 at 64 px (5 seeds: 3 first, 2 added after a first look)",
        _better("deeplab_os8", "aspp_same_rate"),
    ),
    Claim(
        "DeepLabV3+",
        "Image-level pooling adds global context that helps",
        "04",
        "DeepLabv3 Table 5: ASPP with vs without image-level features",
        "none",
        not_tested="the scenes carry no image-level cue (no class depends on what "
        "else is in the image), so image pooling has nothing to add here",
    ),
    Claim(
        "DeepLabV3+",
        "The decoder refines object boundaries",
        "05",
        "Fig. 5: mIoU in a trimap band of growing width around boundaries, decoder "
        "vs bilinear upsampling",
        "decoder vs none at 128 px (OS 8, the decoder upsamples 2×; Fig. 5 is at OS "
        "16): pixel-accuracy gain in the band of pixels within 1 px of a label "
        "boundary (about 4 px across each outline) minus the gain on object pixels "
        f"more than {INTERIOR_MARGIN} px from every boundary; the band holds more wire "
        "and ring pixels than the interior",
        _boundary_gain(1),
    ),
    Claim(
        "SETR",
        "Progressive upsampling (PUP) beats naive upsampling",
        "07",
        "Table 2: PUP vs Naive on Cityscapes (78.39 vs 77.37, 40k)",
        "PUP vs Naive, mIoU; the arms also differ in their auxiliary heads",
        _better("setr_pup", "setr_naive"),
    ),
    Claim(
        "SETR",
        "Multi-level aggregation (MLA) beats naive upsampling on ADE20K and Pascal "
        "Context (not on Cityscapes, where MLA is below Naive: 76.65 vs 77.37)",
        "07",
        "Tables 2, 4, 5: MLA vs Naive per dataset",
        "MLA vs Naive, mIoU; the arms also differ in their auxiliary heads",
        _better("setr_mla", "setr_naive"),
    ),
    Claim(
        "SegFormer",
        "Sequence reduction cuts attention's O(N²) term by the reduction ratio R",
        "09",
        "§3.1, Eq. 2",
        "layers.efficient_attention, MACs counted",
        exact=_efficient_attention_cost,
    ),
    Claim(
        "SegFormer",
        "Mix-FFN without a position encoding is at least as accurate as a plain FFN "
        "with one",
        "10",
        "Table 1c: Mix-FFN vs positional encoding at the training resolution (80.5 "
        "vs 77.3, Cityscapes, 768×768 sliding window)",
        "Mix-FFN vs plain FFN + learned table, mIoU at 64 px; two changes at once, "
        "as in the paper (chapter 10 separates them)",
        _better("segformer", "segformer_position_table"),
    ),
    Claim(
        "SegFormer",
        "Without a position encoding, accuracy drops less on whole images larger "
        "than the training crops",
        "10",
        "Table 1c: sliding window (768×768) vs whole image (1024×2048), same object "
        "scale: PE −3.3, Mix-FFN −0.7 mIoU",
        "whole 128-px view vs 64-px sliding windows at the training object scale; "
        "effect = PE arm's drop minus Mix-FFN's",
        _sliding_drop(2),
    ),
    Claim(
        "SegFormer",
        "The lightweight All-MLP decoder is a small part of the model: parameters",
        "11",
        "§3.2 and Table 1a (decoder parameters)",
        "parameters of SegFormer-B0 (150 classes), counted",
        exact=_decoder_params,
    ),
    Claim(
        "SegFormer",
        "The lightweight All-MLP decoder is a small part of the model: computation",
        "11",
        "§3.2 ('lightweight')",
        "MACs of SegFormer-B0 at 512×512, counted",
        exact=_decoder_macs,
    ),
    Claim(
        "SegFormer",
        "The encoder's effective receptive field is large, which is why a light MLP "
        "decoder suffices",
        "13",
        "Fig. 3: ERFs of DeepLabV3+ and SegFormer stages on Cityscapes",
        "none",
        not_tested="chapter 13 measures ERFs of the trained models but swaps no "
        "decoder, so the 'why' is not tested",
    ),
)


def claims_table(results: Optional[Dict[str, Any]] = None) -> List[Dict[str, str]]:
    """One row per claim of :data:`CLAIMS`: paper, claim, chapter, the paper's test,
    the book's test, the verdict (``holds`` / ``reversed`` / ``inconclusive (MDE x)``
    / ``not tested here``; counted claims ``holds`` or ``does not hold``), the effect
    with its 95 % interval, and the evidence, computed now from the record."""
    rows = []
    for claim in CLAIMS:
        row = dict(
            paper=claim.paper,
            claim=claim.claim,
            chapter=claim.chapter,
            paper_test=claim.paper_test,
            test=claim.test,
        )
        if claim.not_tested:
            row.update(
                verdict="not tested here",
                effect="–",
                mde="–",
                evidence=claim.not_tested,
            )
        elif claim.exact is not None:
            ok, evidence = claim.exact()
            row.update(
                verdict="holds" if ok else "does not hold",
                effect="exact",
                mde="–",
                evidence=evidence,
            )
        else:
            e, evidence = claim.effect(results)
            row.update(
                verdict=verdict_text(e),
                effect=format(e, "+.3f"),
                mde=f"{e.mde:.3f}",
                evidence=evidence,
            )
        rows.append(row)
    return rows
