"""The book's experiments (``tutorial_lib.experiments``, ``make experiments``).

* The shipped record ``tutorial_lib/results/experiments.json`` is complete: every
  configuration × seed of :data:`~tutorial_lib.experiments.RECIPE`, metrics in range,
  the baselines, every experiment's configurations.
* It reproduces: the shipped capstone checkpoints score their seed-0 run's validation
  mIoU again, ``checkpoints/metrics.json`` agrees with it, and a 20-step re-run of the
  FCN gives the recorded first losses.
* The summary and verdict helpers, and the pieces the experiments added to the library
  (boundary bands, the position-table ablation of SegFormer, DeepLab at output stride
  32, scale maps), on small hand-made inputs.
"""
from __future__ import annotations

import math
import statistics
from typing import Any, Dict

import pytest
import torch

from tutorial_lib import experiments
from tutorial_lib.experiments import (
    CLAIMS,
    CONFIGS,
    EVAL_SIZES,
    EXPERIMENTS,
    RECIPE,
    SAME_SCALE_TILES,
    TRIMAP_WIDTHS,
    Stat,
    baseline,
    claims_table,
    metric_values,
    runs,
    summary,
    summary_table,
)

VERDICTS = {"holds", "reversed"}  # of trained claims; or "inconclusive (MDE x)"
OTHER_VERDICTS = {"does not hold", "not tested here"}  # counted claims; untested ones


def _verdict_ok(verdict: str) -> bool:
    return verdict in VERDICTS | OTHER_VERDICTS or (
        verdict.startswith("inconclusive (MDE ") and verdict.endswith(")")
    )


# ----------------------------------------------------------------------------------------
# Helpers: a small synthetic record in the format tools/run_experiments.py writes


def _val(miou: float, size: int) -> Dict[str, Any]:
    val = {
        "miou": miou,
        "pixel_accuracy": 0.9,
        "iou": {"background": 0.95, "wire": miou / 2},
        "trimap": {str(w): miou - 0.1 for w in TRIMAP_WIDTHS},
        "boundary": {
            **{str(w): {"band_accuracy": miou, "band_share": 0.3} for w in TRIMAP_WIDTHS},
            "object_interior_accuracy": 0.9,
            "object_interior_share": 0.2,
        },
        "scale_accuracy": {"small": 0.5, "medium": 0.6, "large": 0.7, "thin": 0.4},
    }
    if size == RECIPE["train_size"]:
        val["resolution"] = {str(s): miou - 0.01 * abs(s - 64) / 16 for s in EVAL_SIZES}
        val["same_scale"] = {
            str(t): {"whole": miou - 0.02, "sliding": miou} for t in SAME_SCALE_TILES
        }
    return val


def synthetic(
    values: Dict[str, Any] = None, seeds=None, metrics: Dict[str, Any] = None
) -> Dict[str, Any]:
    """Every configuration with each of its seeds (or ``seeds``); mIoU 0.5 + 0.01·seed
    unless ``values`` gives ``{config: [miou per seed]}``, and ``metrics``
    ``{config: {key path: [value per seed]}}``. Runs are listed newest seed first (the
    helpers must sort them)."""
    values, metrics = values or {}, metrics or {}
    recorded = []
    for name, config in CONFIGS.items():
        config_seeds = config.seeds if seeds is None else seeds
        for i, seed in reversed(list(enumerate(config_seeds))):
            miou = values.get(name, [0.5 + 0.01 * s for s in config_seeds])[i]
            val = _val(miou, config.train_size)
            for path, per_seed in metrics.get(name, {}).items():
                node = val
                *parents, leaf = path.split(".")
                for key in parents:
                    node = node[key]
                node[leaf] = per_seed[i]
            recorded.append(
                {"config": name, "seed": seed, "steps_per_second": 4.0 + seed, "val": val}
            )
    return {
        "recipe": dict(RECIPE),
        "runs": recorded,
        "baselines": {
            "all_background": {
                "miou": 0.14,
                "pixel_accuracy": 0.8,
                "iou": {"background": 0.8, "wire": 0.0},
                "trimap": {str(w): 0.05 for w in TRIMAP_WIDTHS},
                "resolution": {str(s): 0.14 for s in EVAL_SIZES},
            },
            "class_prior_loss": 0.9,
        },
    }


# ----------------------------------------------------------------------------------------
# (d) Summary and verdict helpers on a synthetic record


def test_runs_are_in_seed_order_and_unknown_configs_are_named():
    record = synthetic()
    assert [r["seed"] for r in runs("fcn", record)] == [0, 1, 2]
    with pytest.raises(ValueError, match="no recorded runs of 'nope'"):
        runs("nope", record)


def test_metric_values_follow_key_paths():
    record = synthetic({"fcn": [0.2, 0.4, 0.9]})
    assert metric_values("fcn", "miou", record) == [0.2, 0.4, 0.9]
    assert metric_values("fcn", "iou.wire", record) == pytest.approx([0.1, 0.2, 0.45])
    assert metric_values("fcn", "trimap.2", record) == pytest.approx([0.1, 0.3, 0.8])
    assert metric_values("fcn", "resolution.128", record) == pytest.approx([0.16, 0.36, 0.86])
    assert metric_values("fcn", "steps_per_second", record) == [4.0, 5.0, 6.0]
    with pytest.raises(ValueError, match=r"'iou.cat' is not recorded for 'fcn' \(missing 'cat'\)"):
        metric_values("fcn", "iou.cat", record)
    with pytest.raises(ValueError, match="missing 'wire'"):
        metric_values("fcn", "miou.wire", record)  # a number has no keys
    with pytest.raises(ValueError, match="no recorded runs"):
        metric_values("nope", "miou", record)


def test_summary_is_mean_and_sample_sd():
    stat = summary("fcn", "miou", synthetic({"fcn": [0.2, 0.4, 0.9]}))
    assert stat.values == (0.2, 0.4, 0.9)
    assert stat.mean == pytest.approx(0.5)
    assert stat.sd == pytest.approx(statistics.stdev([0.2, 0.4, 0.9]))  # n - 1, not n
    assert stat.sd == pytest.approx(math.sqrt(((0.3**2) + (0.1**2) + (0.4**2)) / 2))
    assert format(stat, ".3f") == "0.500 ± 0.361" == str(stat) == format(stat, "")
    assert format(Stat(1.0, 0.25, (1.0,)), ".1f") == "1.0 ± 0.2"
    one_seed = summary("fcn", "miou", synthetic({c: [0.3] for c in CONFIGS}, seeds=(0,)))
    assert one_seed.mean == 0.3 and math.isnan(one_seed.sd)


def test_baseline_and_its_errors():
    record = synthetic()
    assert baseline("miou", record) == 0.14
    assert baseline("trimap.2", record) == 0.05
    with pytest.raises(ValueError, match="'scale_accuracy.small' has no all-background"):
        baseline("scale_accuracy.small", record)
    assert experiments.class_prior_loss(record) == 0.9


def test_summary_table_rows_columns_and_baseline():
    record = synthetic(
        {
            "deeplab_os8": [0.7, 0.8, 0.9, 0.7, 0.9],
            "deeplab_os16": [0.6, 0.6, 0.6],
            "deeplab_os32": [0.1, 0.2, 0.3],
        },
    )
    text = summary_table(
        "output_stride_64", [("mIoU", "miou"), ("small", "scale_accuracy.small")], record
    )
    lines = text.splitlines()
    assert len(lines) == 1 + 3 + 1
    assert lines[0].startswith("mean ± sd over 3–5 seeds") and lines[0].split()[-2:] == ["mIoU", "small"]
    labels = [CONFIGS[c].label for c in EXPERIMENTS["output_stride_64"].configs]
    for line, label, cell in zip(lines[1:4], labels, ["0.800 ± 0.100", "0.600 ± 0.000", "0.200 ± 0.100"]):
        assert line.startswith(label) and cell in line
    assert lines[-1].startswith("all background") and lines[-1].split()[-2:] == ["0.140", "–"]
    assert len({len(line) for line in lines}) == 1  # aligned columns
    only = summary_table("output_stride_64", results=record, configs=["deeplab_os32"]).splitlines()
    assert len(only) == 3 and only[1].startswith(CONFIGS["deeplab_os32"].label)
    with pytest.raises(ValueError, match="summary_table experiment"):
        summary_table("nope", results=record)


_TABLES: Dict[int, Any] = {}


def _row(record, claim_prefix):
    """The row of ``claims_table(record)`` whose claim starts with ``claim_prefix``."""
    if id(record) not in _TABLES:  # the counted claims build SegFormer-B0: once per record
        _TABLES[id(record)] = (record, claims_table(record))
    rows = [r for r in _TABLES[id(record)][1] if r["claim"].startswith(claim_prefix)]
    assert len(rows) == 1, claim_prefix
    return rows[0]


DENSER = "A denser output stride"


def test_claims_table_verdicts_follow_the_one_rule():
    a, b = "deeplab_os8_128", "deeplab_os16_128"
    large = synthetic({a: [0.70, 0.72, 0.69], b: [0.60, 0.61, 0.60]})
    worse = synthetic({a: [0.60, 0.61, 0.60], b: [0.70, 0.72, 0.69]})
    # better in every seed, but by 0.001-0.02 with a spread: the interval covers zero
    tiny = synthetic({a: [0.601, 0.620, 0.605], b: [0.600, 0.600, 0.600]})
    row = _row(large, DENSER)
    assert row["verdict"] == "holds"
    assert row["effect"].startswith("+0.100 [") and float(row["mde"]) > 0
    assert "atrous, OS 8 (128 px) 0.703 ± 0.015" in row["evidence"]
    assert "(3 paired seeds)" in row["evidence"]
    assert _row(worse, DENSER)["verdict"] == "reversed"
    verdict = _row(tiny, DENSER)["verdict"]
    assert verdict.startswith("inconclusive (MDE 0.0") and verdict.endswith(")")
    assert _row(tiny, DENSER)["effect"].startswith("+0.009 [-0.0")


def test_claims_table_uses_each_claims_metric():
    # the decoder claim: gain in the 1-px band minus gain on object interiors, at 128 px
    a, b = "deeplabv3plus_128", "deeplab_os8_128"
    band, inside = "boundary.1.band_accuracy", "boundary.object_interior_accuracy"
    boundary_only = synthetic(
        metrics={
            a: {band: [0.80, 0.82, 0.81], inside: [0.95, 0.95, 0.96]},
            b: {band: [0.70, 0.71, 0.70], inside: [0.95, 0.96, 0.95]},
        }
    )
    row = _row(boundary_only, "The decoder refines")
    assert row["verdict"] == "holds" and "within 1 px of a boundary +0.107" in row["evidence"]
    everywhere = synthetic(
        metrics={
            a: {band: [0.80, 0.82, 0.81], inside: [0.90, 0.92, 0.91]},
            b: {band: [0.70, 0.72, 0.71], inside: [0.80, 0.82, 0.81]},
        }
    )
    # the same gain inside as on the boundary: not a boundary effect
    assert _row(everywhere, "The decoder refines")["verdict"].startswith("inconclusive")
    # the resolution claim: the drop from sliding windows to the whole 128-px view
    whole, slide = "same_scale.2.whole", "same_scale.2.sliding"
    record = synthetic(
        metrics={
            "segformer": {whole: [0.78, 0.79, 0.77], slide: [0.80, 0.80, 0.80]},
            "segformer_position_table": {whole: [0.60, 0.62, 0.61], slide: [0.72, 0.73, 0.72]},
        }
    )
    row = _row(record, "Without a position encoding")
    assert row["verdict"] == "holds"  # the table's arm loses 0.11, Mix-FFN 0.02
    assert row["effect"].startswith("+0.093 [")
    assert "SegFormer: sliding 0.800, whole 0.780" in row["evidence"]


def test_claims_table_rows_and_cost_claims():
    rows = claims_table(synthetic())
    assert len(rows) == len(CLAIMS)
    keys = {"paper", "claim", "chapter", "paper_test", "test", "verdict", "effect", "mde", "evidence"}
    for row, claim in zip(rows, CLAIMS):
        assert set(row) == keys
        assert (row["paper"], row["claim"], row["chapter"]) == (claim.paper, claim.claim, claim.chapter)
        assert row["paper"] in {"DeepLabV3+", "SETR", "SegFormer"}
        assert _verdict_ok(row["verdict"]) and row["evidence"] and row["paper_test"]
    assert [r["chapter"] for r in rows] == sorted(r["chapter"] for r in rows)  # book order
    # the counted claims do not depend on the training results
    cost = [r for r in rows if r["effect"] == "exact"]
    assert [r["chapter"] for r in cost] == ["03", "09", "11", "11"]
    assert [r["verdict"] for r in cost] == ["holds", "holds", "holds", "does not hold"]
    assert f"{1 / 1024 + 1 / 9:.3f}" in cost[0]["evidence"]
    assert "(64×)" in cost[1]["evidence"]
    assert "11.5% of SegFormer-B0's parameters" in cost[2]["evidence"]
    assert "62% of SegFormer-B0's MACs" in cost[3]["evidence"]
    # claims whose test here is not the paper's have no verdict from the rule
    untested = [r for r in rows if r["verdict"] == "not tested here"]
    assert len(untested) == 3 and all(r["effect"] == "–" for r in untested)


def test_paired_uses_the_common_seeds():
    record = synthetic()
    assert experiments.common_seeds(("deeplab_os8", "aspp_same_rate"), record) == [0, 1, 2, 3, 4]
    assert experiments.common_seeds(("deeplab_os8", "deeplabv3plus"), record) == [0, 1, 2]
    assert experiments.paired("deeplab_os8", "deeplabv3plus", results=record).n == 3


def test_unknown_configuration_is_refused():
    with pytest.raises(ValueError, match="build_config name"):
        experiments.build_config("nope")


# ----------------------------------------------------------------------------------------
# (d) Library pieces the experiments use


def _square(size: int = 9) -> torch.Tensor:
    mask = torch.zeros(size, size, dtype=torch.int64)
    mask[3:6, 3:6] = 2
    return mask


def test_boundary_band_marks_exact_pixels():
    from tutorial_lib.metrics import boundary_band

    mask = _square()
    expected0 = torch.zeros(9, 9, dtype=torch.bool)
    expected0[2:7, 2:7] = True  # the square's outline and the background ring around it
    expected0[4, 4] = False  # the square's centre has no neighbour of another label
    assert torch.equal(boundary_band(mask, 0), expected0)
    expected1 = torch.zeros(9, 9, dtype=torch.bool)
    expected1[1:8, 1:8] = True
    assert torch.equal(boundary_band(mask, 1), expected1)
    assert bool(boundary_band(mask, 2).all())
    assert not bool(boundary_band(torch.full((9, 9), 3), 2).any())  # no boundary at all
    # the image border is not a boundary (replicate padding)
    edge = torch.zeros(6, 6, dtype=torch.int64)
    edge[:, 3:] = 1
    expected = torch.zeros(6, 6, dtype=torch.bool)
    expected[:, 2:4] = True  # the two columns that meet; not the image's border
    assert torch.equal(boundary_band(edge, 0), expected)


def test_boundary_band_on_a_batch():
    from tutorial_lib.metrics import boundary_band

    batch = torch.stack([_square(), torch.zeros(9, 9, dtype=torch.int64)])
    band = boundary_band(batch, 1)
    assert band.shape == (2, 9, 9)
    assert torch.equal(band[0], boundary_band(_square(), 1))
    assert not bool(band[1].any())


@pytest.mark.parametrize(
    "target, width",
    [
        (torch.zeros(9, 9), 1),  # float
        (torch.zeros(9, dtype=torch.int64), 1),  # rank 1
        (torch.zeros(1, 1, 9, 9, dtype=torch.int64), 1),  # rank 4
        (_square(), -1),
        (_square(), 1.5),
        (_square(), True),
    ],
)
def test_boundary_band_rejects_bad_input(target, width):
    from tutorial_lib.metrics import boundary_band, trimap_target

    with pytest.raises(ValueError, match="boundary_band"):
        boundary_band(target, width)
    with pytest.raises(ValueError, match="boundary_band"):
        trimap_target(target, width)


def test_trimap_target_keeps_only_the_band():
    from tutorial_lib.metrics import boundary_band, confusion_matrix, mean_iou, trimap_target

    mask = _square()
    band = boundary_band(mask, 0)
    target = trimap_target(mask, 0)
    assert torch.equal(target[band], mask[band])
    assert bool((target[~band] == 255).all()) and int((~band).sum()) == 81 - 24
    assert bool((trimap_target(mask, 0, ignore_index=7)[~band] == 7).all())
    # scored only in the band: a prediction wrong outside the band still scores 1
    pred = mask.clone()
    pred[0, 0] = 2
    pred[4, 4] = 0
    assert mean_iou(confusion_matrix(pred, target, 3)) == 1.0
    assert mean_iou(confusion_matrix(pred, mask, 3)) < 1.0


def _small_segformer(**overrides):
    from tutorial_lib.models.segformer import SegFormer, segformer_config

    settings = dict(
        embed_dims=(8, 16, 40, 64), num_heads=(1, 2, 5, 8), decoder_dim=32, num_classes=6
    )
    settings.update(overrides)
    return SegFormer(segformer_config("b0", **settings))


def test_position_table_per_stage():
    model = _small_segformer(ffn="plain", position_size=64)
    shapes = [tuple(stage.pos_embed.shape) for stage in model.encoder.stages]
    assert shapes == [(1, 8, 16, 16), (1, 16, 8, 8), (1, 40, 4, 4), (1, 64, 2, 2)]
    odd = _small_segformer(ffn="plain", position_size=50)  # grids round up: 13, 7, 4, 2
    assert [stage.pos_embed.shape[-1] for stage in odd.encoder.stages] == [13, 7, 4, 2]
    # the ablation the experiments train: the capstone widths, tables for 64 px
    trained = experiments.build_config("segformer_position_table")
    assert [tuple(s.pos_embed.shape[-2:]) for s in trained.encoder.stages] == [
        (16, 16), (8, 8), (4, 4), (2, 2)
    ]
    assert all(s.pos_embed is None for s in _small_segformer().encoder.stages)


def test_position_table_is_used_and_resized_at_other_sizes():
    model = _small_segformer(ffn="plain", position_size=64).eval()
    for size in (64, 96, 48):
        x = torch.rand(2, 3, size, size)
        with torch.no_grad():
            out = model(x)
            assert out.shape == (2, 6, size // 4, size // 4)
            stage = model.encoder.stages[0]
            saved = stage.pos_embed.detach().clone()
            stage.pos_embed.data.add_(0.5)  # the table reaches the output at every size
            changed = model(x)
            stage.pos_embed.data.copy_(saved)
        assert not torch.allclose(out, changed)


def test_plain_ffn_differs_from_mix_ffn():
    torch.manual_seed(0)
    mix = _small_segformer().eval()
    torch.manual_seed(0)
    plain = _small_segformer(ffn="plain").eval()
    names_mix = {n for n, _ in mix.named_modules()}
    names_plain = {n for n, _ in plain.named_modules()}
    assert any(n.endswith("dwconv") for n in names_mix)
    assert not any(n.endswith("dwconv") for n in names_plain)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert mix(x).shape == plain(x).shape
        assert not torch.allclose(mix(x), plain(x), atol=1e-3)


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(ffn="conv"), "ffn"),
        (dict(ffn="plain", position_size=0), "position_size"),
        (dict(ffn="plain", position_size=-64), "position_size"),
    ],
)
def test_segformer_ablation_rejects_bad_values(overrides, match):
    from tutorial_lib.models.segformer import SegFormerConfig

    with pytest.raises(ValueError, match=match):
        SegFormerConfig(**overrides)


def test_deeplab_output_stride_32_needs_explicit_rates():
    from tutorial_lib.models.deeplab import XCEPTION_SMALL, DeepLabConfig, DeepLabV3Plus

    settings = dict(num_classes=6, output_stride=32, backbone=XCEPTION_SMALL, aspp_channels=16,
                    decoder=False)
    with pytest.raises(ValueError, match="aspp_rates"):
        DeepLabV3Plus(DeepLabConfig(**settings))
    model = DeepLabV3Plus(DeepLabConfig(**settings, aspp_rates=(1, 2, 3))).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        features, _ = model.backbone(x)
        assert features.shape[-2:] == (2, 2)  # every stride kept: 64 / 32
        assert model(x).shape == (1, 6, 64, 64)
    with pytest.raises(ValueError, match="output_stride"):
        DeepLabV3Plus(DeepLabConfig(**{**settings, "output_stride": 4}, aspp_rates=(1,)))
    with torch.no_grad():  # the configurations the experiments train
        assert experiments.build_config("deeplab_os32").backbone(x)[0].shape[-2:] == (2, 2)
        assert experiments.build_config("deeplab_os8").backbone(x)[0].shape[-2:] == (8, 8)


def test_scale_map_matches_the_mask():
    from tutorial_lib.data import CLASS_NAMES, SCALE_NAMES, SyntheticScenes, render_scale_map

    scenes = SyntheticScenes(16, size=64, seed=3)
    wire, thin = CLASS_NAMES.index("wire"), 1 + SCALE_NAMES.index("thin")
    seen = set()
    for i in range(len(scenes)):
        _, mask = scenes[i]
        scale = scenes.scale_map(i)
        assert scale.shape == mask.shape and scale.dtype == torch.int64
        assert torch.equal(scale != 0, mask != 0), f"scene {i}"
        assert bool((scale[mask == wire] == thin).all()) and bool((scale[mask != wire] != thin).all())
        seen |= set(scale.unique().tolist())
        for size in (48, (40, 56)):
            _, other = scenes.render(i, size)
            assert torch.equal(scenes.scale_map(i, size) != 0, other != 0)
    assert seen == {0, 1, 2, 3, 4}  # every scale occurs
    assert torch.equal(render_scale_map(scenes.scene(0), 64), scenes.scale_map(0))
    with pytest.raises(ValueError, match="render_scale_map"):
        render_scale_map(scenes.scene(0), 0)


# ----------------------------------------------------------------------------------------
# (a) The shipped record is complete


@pytest.fixture(scope="module")
def record():
    try:
        results = experiments.load_results()
    except FileNotFoundError:
        pytest.fail("tutorial_lib/results/experiments.json is missing: run make experiments")
    return results


def test_record_has_every_run_of_the_recipe(record):
    assert record["recipe"] == RECIPE, "recorded with another recipe: rerun make experiments"
    expected = {(c, s) for c, config in CONFIGS.items() for s in config.seeds}
    have = [(r["config"], r["seed"]) for r in record["runs"]]
    assert len(have) == len(set(have)), "a run is recorded twice"
    missing = sorted(expected - set(have))
    assert not missing, f"runs missing (make experiments --resume): {missing}"
    assert set(have) == expected
    assert record["wall_seconds"] > 0 and record["commit"]
    assert {"processor", "cpus", "workers", "threads_per_worker", "torch"} <= set(record["machine"])


def _leaves(node, path=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{path}.{key}" if path else key)
    else:
        yield path, node


def test_every_run_is_complete_and_in_range(record):
    from tutorial_lib.data import CLASS_NAMES, SCALE_NAMES
    from tutorial_lib.profiling import count_params

    params = {}
    for run in record["runs"]:
        name = f"{run['config']} seed {run['seed']}"
        assert run["steps"] == RECIPE["steps"], name
        assert len(run["first_losses"]) == 20, name
        assert len(run["train_loss"]) == -(-RECIPE["steps"] // run["loss_every"]), name
        assert all(math.isfinite(v) and v > 0 for v in run["train_loss"]), name
        assert run["steps_per_second"] > 0 and run["train_seconds"] > 0, name
        val = run["val"]
        assert set(val["iou"]) == set(CLASS_NAMES), name
        assert set(val["trimap"]) == {str(w) for w in TRIMAP_WIDTHS}, name
        assert set(val["scale_accuracy"]) == set(SCALE_NAMES), name
        if CONFIGS[run["config"]].train_size == RECIPE["train_size"]:
            assert set(val["resolution"]) == {str(s) for s in EVAL_SIZES}, name
            assert val["resolution"][str(RECIPE["train_size"])] == val["miou"], name
        for key, value in _leaves(val):
            if key.startswith("erf."):  # radii in pixels, within the 64-px image
                assert 0.0 < value < RECIPE["train_size"], f"{name}: {key} = {value}"
            else:
                assert 0.0 <= value <= 1.0, f"{name}: {key} = {value}"
        if run["config"] in ("segformer", "deeplabv3plus"):
            assert "erf" in val, f"{name}: no per-stage ERF (make experiments --erf)"
        # the metrics a claim reads (runs kept from the earlier record lack the others)
        if run["config"] in EXPERIMENTS["decoder"].configs:
            assert "boundary" in val, f"{name}: no boundary record"
        if run["config"] in EXPERIMENTS["position"].configs:
            assert "same_scale" in val, f"{name}: no same-scale record"
        if run["config"] not in params:
            params[run["config"]] = count_params(experiments.build_config(run["config"]))
        assert run["params"] == params[run["config"]], f"{name}: recorded with another model"


def test_baselines_are_recorded(record):
    from tutorial_lib.data import CLASS_NAMES

    assert "baselines" in record, "no baselines: make experiments did not finish"
    background = record["baselines"]["all_background"]
    assert {"miou", "pixel_accuracy", "iou", "trimap", "scale_accuracy", "resolution"} <= set(background)
    for key, value in _leaves(background):
        assert 0.0 <= value <= 1.0, f"all_background {key} = {value}"
    # calling everything background: IoU = pixel accuracy for background, 0 elsewhere
    iou = background["iou"]
    assert iou["background"] == pytest.approx(background["pixel_accuracy"], abs=1e-6)
    assert all(iou[c] == 0 for c in CLASS_NAMES[1:])
    assert background["miou"] == pytest.approx(iou["background"] / len(CLASS_NAMES), abs=1e-6)
    frequencies = record["baselines"]["class_frequencies"]
    assert list(frequencies) == list(CLASS_NAMES) and sum(frequencies.values()) == pytest.approx(1, abs=1e-5)
    assert record["baselines"]["class_prior_loss"] == pytest.approx(
        -sum(p * math.log(p) for p in frequencies.values()), rel=1e-4
    )


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_experiment_is_recorded(record, name):
    for config in EXPERIMENTS[name].configs:
        assert len(runs(config)) == len(CONFIGS[config].seeds), f"{name}: {config}"
    table = summary_table(name, [("mIoU", "miou"), ("trimap 2 px", "trimap.2")])
    assert all(len(line) <= 88 for line in table.splitlines())  # the page-width rule


def test_every_configuration_but_striding_learns(record):
    """The issue's target "models actually learn", as recorded: every configuration
    clears the all-background mIoU by 0.1 in every seed, except DeepLab at output
    stride 32 (every Xception stride kept: a 2×2 feature map at 64 px), which the
    record shows at the all-background mIoU (chapter 02). Not asserted for it."""
    base = baseline("miou")
    short = {
        c: round(min(metric_values(c)), 3) for c in CONFIGS if min(metric_values(c)) < base + 0.1
    }
    assert set(short) <= {"deeplab_os32"}, f"all background {base:.3f}; not clear of it: {short}"


def test_every_run_ends_below_the_class_prior_loss(record):
    """The training loss (the mean of the last 10 steps; SETR's includes its auxiliary
    heads) falls in every run and ends below the loss of predicting the class
    frequencies everywhere."""
    prior = experiments.class_prior_loss()
    for run in record["runs"]:
        name = f"{run['config']} seed {run['seed']}"
        assert run["train_loss"][-1] < run["train_loss"][0], name
        assert run["train_loss"][-1] < prior, f"{name}: {run['train_loss'][-1]} vs prior {prior}"


def test_claims_table_of_the_record(record):
    rows = claims_table()
    assert [r["claim"] for r in rows] == [c.claim for c in CLAIMS]
    assert all(_verdict_ok(r["verdict"]) for r in rows)
    assert [r["verdict"] for r in rows if r["effect"] == "exact"] == [
        "holds", "holds", "holds", "does not hold"
    ]


# ----------------------------------------------------------------------------------------
# (b) The shipped checkpoints reproduce the record


@pytest.fixture(scope="module")
def val():
    from tutorial_lib.data import standard_splits

    return standard_splits()[1]


def test_checkpoint_metrics_agree_with_the_record(record):
    from tutorial_lib.compare import CAPSTONE_MODELS, training_record
    from tutorial_lib.data import CLASS_NAMES

    stored = training_record()
    assert stored["recipe"] == record["recipe"] and stored["seed"] == 0
    assert set(stored["models"]) == set(CAPSTONE_MODELS)
    for name, entry in stored["models"].items():
        run = runs(name)[0]
        assert run["seed"] == 0 and "checkpoint" in run, name
        assert entry["val_miou"] == run["val"]["miou"], name
        assert entry["val_pixel_accuracy"] == run["val"]["pixel_accuracy"], name
        assert entry["val_iou"] == [run["val"]["iou"][c] for c in CLASS_NAMES], name
        assert entry["params"] == run["params"], name
        assert entry["history"]["train_loss"] == run["train_loss"], name
        assert entry["file_bytes"] == run["checkpoint"]["file_bytes"], name


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fcn", "deeplabv3plus", "setr_naive", "setr_pup", "setr_mla", "segformer"])
def test_shipped_checkpoint_scores_its_recorded_miou(record, val, name):
    from tutorial_lib.compare import load_trained
    from tutorial_lib.data import CLASS_NAMES
    from tutorial_lib.train import evaluate

    recorded = runs(name)[0]["val"]
    result = evaluate(load_trained(name), val, len(CLASS_NAMES))
    # a few of 256·64² pixels may flip between CPU kernels and thread counts
    assert result.miou == pytest.approx(recorded["miou"], abs=2e-3)
    assert result.pixel_accuracy == pytest.approx(recorded["pixel_accuracy"], abs=2e-3)
    iou = [recorded["iou"][c] for c in CLASS_NAMES]
    torch.testing.assert_close(result.iou.double(), torch.tensor(iou, dtype=torch.float64),
                               atol=5e-3, rtol=0)


# ----------------------------------------------------------------------------------------
# (c) A short re-run reproduces the first losses


@pytest.mark.slow
def test_fcn_rerun_reproduces_the_first_losses(record):
    """Configuration ``fcn``, seed 0, trained as ``tools/run_experiments.py::run_one``
    trains it, stopped after 20 steps.

    ``fit(max_steps=20)`` alone would schedule the learning rate over 20 steps (warm-up
    2 steps instead of 100) and change every loss after the first; ``schedule_steps``
    lays the schedule out as the recorded run's (1000 steps, warm-up 100), so the 20
    steps are exactly the recorded run's first 20.
    """
    from tutorial_lib import train
    from tutorial_lib.data import CLASS_NAMES, standard_splits
    from tutorial_lib.utils import seed_everything

    steps = RECIPE["steps"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the recorded run (one thread per worker)
    try:
        training, _ = standard_splits(
            size=RECIPE["train_size"], num_train=RECIPE["num_train"], num_val=RECIPE["num_val"]
        )
        seed_everything(0)
        model = experiments.build_config("fcn", aux=True)
        history = train.fit(
            model,
            training,
            None,
            num_classes=len(CLASS_NAMES),
            epochs=-(-steps // (len(training) // RECIPE["batch_size"])),
            max_steps=20,
            schedule_steps=steps,
            batch_size=RECIPE["batch_size"],
            lr=RECIPE["lr"],
            weight_decay=RECIPE["weight_decay"],
            power=RECIPE["power"],
            aux_weight=RECIPE["aux_weight"],
            seed=0,
            progress=False,
        )
    finally:
        torch.set_num_threads(threads)
    recorded = runs("fcn")[0]["first_losses"]
    assert len(history.train_loss) == 20
    # Summation order differs between CPUs (SIMD width) and thread counts, and 20 steps
    # compound it: natively (AVX2, 1 or 2 threads) the losses agree to 5e-7 relative,
    # without SIMD (ATEN_CPU_CAPABILITY=default) to 1.5e-3. A different batch, learning
    # rate or initialisation moves them by percents.
    assert history.train_loss == pytest.approx(recorded, rel=5e-3)


def test_every_training_size_has_its_own_all_background_baseline() -> None:
    # a 128-px experiment is judged against the all-background score of 128-px scenes
    from tutorial_lib import experiments as ex

    sizes = {c.train_size for c in ex.CONFIGS.values()}
    for size in sizes:
        assert 0.0 < ex.baseline("boundary.1.band_accuracy", size=size) < 1.0
    assert ex.baseline("boundary.1.band_accuracy", size=128) != ex.baseline(
        "boundary.1.band_accuracy"
    )
    table = ex.summary_table("output_stride", (("band", "boundary.1.band_accuracy"),))
    assert table.splitlines()[-1].split()[-1] == format(
        ex.baseline("boundary.1.band_accuracy", size=128), ".3f"
    )
    with pytest.raises(ValueError, match="at 96 px"):
        ex.baseline("miou", size=96)
