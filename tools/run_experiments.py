"""Train every configuration of the book's experiments with every seed (``make experiments``).

Each (configuration, seed) of :data:`tutorial_lib.experiments.CONFIGS` ×
:data:`tutorial_lib.experiments.SEEDS` is trained with
:data:`tutorial_lib.experiments.RECIPE` on ``standard_splits()`` and scored on the
validation split: mIoU, per-class IoU, pixel accuracy, trimap mIoU, pixel accuracy per
object scale and mIoU at the sizes :data:`~tutorial_lib.experiments.EVAL_SIZES`. The runs
are spread over ``--workers`` processes with one thread each (small models train faster
side by side than one at a time on two threads). Everything goes to
``tutorial_lib/results/experiments.json`` (package data, read by
:func:`tutorial_lib.experiments.load_results`), rewritten after every run, so an
interrupted command keeps what it finished and ``--resume`` continues it.

Seed 0 of each capstone model also ships its weights (float16 safetensors, auxiliary heads
dropped) and its metrics in ``tutorial_lib/checkpoints/`` for chapters 01, 05, 07, 12 and 13.

Usage: ``python tools/run_experiments.py [--configs NAME ...] [--seeds 0 1 2] [--steps N]
[--workers 2] [--out FILE] [--resume] [--no-checkpoints]``
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import pathlib
import platform
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Costliest first, so that the last runs to finish are short ones.
ORDER = (
    "deeplabv3plus",
    "deeplab_os8",
    "aspp_no_pooling",
    "aspp_one_rate",
    "deeplab_os16",
    "deeplab_os32",
    "segformer",
    "segformer_position_table",
    "setr_pup",
    "segformer_small",
    "setr_mla",
    "fcn",
    "setr_naive",
)

_DATA: Optional[Tuple[Any, Any]] = None


def _data(recipe: Dict[str, Any]) -> Tuple[Any, Any]:
    global _DATA
    if _DATA is None:
        from tutorial_lib.data import standard_splits

        _DATA = standard_splits(
            size=recipe["train_size"], num_train=recipe["num_train"], num_val=recipe["num_val"]
        )
    return _DATA


def score(model: Any, val: Any, recipe: Dict[str, Any]) -> Dict[str, Any]:
    """Everything recorded about one trained model on the validation scenes."""
    import torch

    from tutorial_lib.compare import scenes_at
    from tutorial_lib.data import CLASS_NAMES, SCALE_NAMES
    from tutorial_lib.experiments import EVAL_SIZES, TRIMAP_WIDTHS
    from tutorial_lib.metrics import (
        confusion_matrix,
        iou_per_class,
        mean_iou,
        pixel_accuracy,
        trimap_target,
    )
    from tutorial_lib.train import evaluate, predict

    k = len(CLASS_NAMES)
    model.eval()
    preds, masks, scales = [], [], []
    with torch.no_grad():
        for start in range(0, len(val), 32):
            idx = range(start, min(start + 32, len(val)))
            images = torch.stack([val[i][0] for i in idx])
            preds.append(predict(model, images))
            masks.append(torch.stack([val[i][1] for i in idx]))
            scales.append(torch.stack([val.scale_map(i) for i in idx]))
    pred, mask, scale = torch.cat(preds), torch.cat(masks), torch.cat(scales)
    confusion = confusion_matrix(pred, mask, k)
    iou = iou_per_class(confusion)
    record: Dict[str, Any] = {
        "miou": round(mean_iou(confusion), 6),
        "pixel_accuracy": round(pixel_accuracy(confusion), 6),
        "iou": {name: round(float(v), 6) for name, v in zip(CLASS_NAMES, iou)},
        "trimap": {
            str(w): round(mean_iou(confusion_matrix(pred, trimap_target(mask, w), k)), 6)
            for w in TRIMAP_WIDTHS
        },
        "scale_accuracy": {
            name: round(float((pred[scale == i + 1] == mask[scale == i + 1]).double().mean()), 6)
            for i, name in enumerate(SCALE_NAMES)
        },
    }
    resolution = {}
    for size in EVAL_SIZES:
        if size == recipe["train_size"]:
            resolution[str(size)] = record["miou"]
        else:
            resolution[str(size)] = round(evaluate(model, scenes_at(val, size), k).miou, 6)
    record["resolution"] = resolution
    return record


def run_one(job: Tuple[str, int, Dict[str, Any], Optional[str]]) -> Dict[str, Any]:
    """Train configuration ``name`` with ``seed``; returns its record (and writes the
    checkpoint to ``checkpoint_dir`` if given)."""
    name, seed, recipe, checkpoint_dir = job
    import torch

    torch.set_num_threads(1)
    from tutorial_lib.data import CLASS_NAMES
    from tutorial_lib.experiments import build_config
    from tutorial_lib.profiling import count_params
    from tutorial_lib.train import fit
    from tutorial_lib.utils import seed_everything

    train, val = _data(recipe)
    seed_everything(seed)
    model = build_config(name, aux=True)
    steps_per_epoch = len(train) // recipe["batch_size"]
    start = time.perf_counter()
    history = fit(
        model,
        train,
        None,
        num_classes=len(CLASS_NAMES),
        epochs=-(-recipe["steps"] // steps_per_epoch),
        max_steps=recipe["steps"],
        batch_size=recipe["batch_size"],
        lr=recipe["lr"],
        weight_decay=recipe["weight_decay"],
        power=recipe["power"],
        aux_weight=recipe["aux_weight"],
        seed=seed,
        progress=False,
    )
    train_seconds = time.perf_counter() - start
    shipped = build_config(name, aux=False)
    from tutorial_lib.compare import inference_state_dict

    state = inference_state_dict(model)
    checkpoint = None
    if checkpoint_dir is not None:
        from tutorial_lib.hub import load_state_dict, save_state_dict

        path = pathlib.Path(checkpoint_dir) / f"{name}.safetensors"
        save_state_dict(state, path)
        path.chmod(0o644)
        state = load_state_dict(path)  # score the weights as shipped (float16)
        checkpoint = {"file": path.name, "file_bytes": path.stat().st_size}
    shipped.load_state_dict(state, strict=True)
    t = time.perf_counter()
    val_record = score(shipped, val, recipe)
    losses = history.train_loss
    every = 10
    record = {
        "config": name,
        "seed": seed,
        "steps": len(losses),
        "params": count_params(shipped),
        "train_seconds": round(train_seconds, 1),
        "eval_seconds": round(time.perf_counter() - t, 1),
        "steps_per_second": round(len(losses) / train_seconds, 3),
        "first_losses": [round(v, 6) for v in losses[:20]],
        "loss_every": every,
        "train_loss": [
            round(sum(losses[i : i + every]) / len(losses[i : i + every]), 5)
            for i in range(0, len(losses), every)
        ],
        "val": val_record,
    }
    if checkpoint is not None:
        record["checkpoint"] = checkpoint
    print(
        f"{name:26s} seed {seed}  mIoU {val_record['miou']:.3f}  "
        f"{len(losses) / train_seconds:5.2f} steps/s  {train_seconds:5.0f} s",
        flush=True,
    )
    return record


def baselines(recipe: Dict[str, Any], known_prior: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """What a model that learned nothing scores: every pixel called background (on
    each metric the runs record), and the cross-entropy of predicting the training
    set's class frequencies everywhere (the loss a model reaches from the class prior
    alone)."""
    import torch

    from tutorial_lib.compare import scenes_at
    from tutorial_lib.data import CLASS_NAMES, SCALE_NAMES
    from tutorial_lib.experiments import EVAL_SIZES, TRIMAP_WIDTHS
    from tutorial_lib.metrics import (
        confusion_matrix,
        iou_per_class,
        mean_iou,
        pixel_accuracy,
        trimap_target,
    )

    k = len(CLASS_NAMES)
    train, val = _data(recipe)
    mask = torch.stack([val[i][1] for i in range(len(val))])
    zeros = torch.zeros_like(mask)
    confusion = confusion_matrix(zeros, mask, k)
    counts = torch.zeros(k, dtype=torch.float64)
    for i in range(len(train) if known_prior is None else 0):
        counts += torch.bincount(train[i][1].flatten(), minlength=k).double()
    prior = counts / counts.sum()
    resolution = {}
    for size in EVAL_SIZES:
        data = scenes_at(val, size)
        m = torch.stack([data[i][1] for i in range(len(data))])
        resolution[str(size)] = round(mean_iou(confusion_matrix(torch.zeros_like(m), m, k)), 6)
    prior_record = (
        {
            "class_prior_loss": round(float(-(prior * prior.log()).sum()), 6),
            "class_frequencies": {c: round(float(v), 6) for c, v in zip(CLASS_NAMES, prior)},
        }
        if known_prior is None
        else known_prior
    )
    return {
        **prior_record,
        "all_background": {
            "miou": round(mean_iou(confusion), 6),
            "pixel_accuracy": round(pixel_accuracy(confusion), 6),
            "iou": {
                c: round(float(v), 6) for c, v in zip(CLASS_NAMES, iou_per_class(confusion))
            },
            "trimap": {
                str(w): round(mean_iou(confusion_matrix(zeros, trimap_target(mask, w), k)), 6)
                for w in TRIMAP_WIDTHS
            },
            "scale_accuracy": {name: 0.0 for name in SCALE_NAMES},
            "resolution": resolution,
        },
    }


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return out + ("+changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_checkpoint_metrics(runs: List[Dict[str, Any]], recipe: Dict[str, Any], out: pathlib.Path) -> None:
    """``metrics.json`` beside the shipped weights: each capstone model's seed-0 record."""
    import torch

    from tutorial_lib.compare import CAPSTONE_MODELS
    from tutorial_lib.data import CLASS_NAMES

    models = {}
    for name, spec in CAPSTONE_MODELS.items():
        run = next((r for r in runs if r["config"] == name and r["seed"] == 0 and "checkpoint" in r), None)
        if run is None:
            continue
        models[name] = {
            "label": spec.label,
            "params": run["params"],
            "val_miou": run["val"]["miou"],
            "val_pixel_accuracy": run["val"]["pixel_accuracy"],
            "val_iou": [run["val"]["iou"][c] for c in CLASS_NAMES],
            "history": {"train_loss": run["train_loss"], "loss_every": run["loss_every"]},
            "train_seconds": run["train_seconds"],
            "file_bytes": run["checkpoint"]["file_bytes"],
        }
    record = {
        "recipe": recipe,
        "seed": 0,
        "classes": list(CLASS_NAMES),
        "weights_dtype": "float16",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "models": models,
    }
    path = out / "metrics.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    path.chmod(0o644)


def main() -> None:
    from tutorial_lib.compare import CAPSTONE_MODELS
    from tutorial_lib.experiments import CONFIGS, RECIPE, SEEDS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="*", default=list(ORDER), choices=list(CONFIGS))
    parser.add_argument("--seeds", nargs="*", type=int, default=list(SEEDS))
    parser.add_argument("--steps", type=int, default=None, help="override RECIPE['steps'] (quick checks)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "tutorial_lib" / "results" / "experiments.json")
    parser.add_argument("--checkpoints", type=pathlib.Path, default=ROOT / "tutorial_lib" / "checkpoints")
    parser.add_argument("--no-checkpoints", action="store_true", help="do not write the capstone weights")
    parser.add_argument("--resume", action="store_true", help="keep the runs already in --out")
    parser.add_argument("--rerun", action="store_true",
                        help="with --resume: train --configs again (replacing their runs), keep the others")
    args = parser.parse_args()
    assert set(ORDER) == set(CONFIGS), "ORDER must list every configuration"
    recipe = dict(RECIPE)
    if args.steps is not None:
        recipe["steps"] = args.steps
    args.out.parent.mkdir(parents=True, exist_ok=True)
    done: List[Dict[str, Any]] = []
    previous_seconds = 0.0
    old_baselines = None
    if args.resume and args.out.exists():
        old = json.loads(args.out.read_text())
        if old.get("recipe") == recipe:
            done = [r for r in old["runs"] if not (args.rerun and r["config"] in args.configs)]
            previous_seconds = old.get("wall_seconds", 0.0)
            old_baselines = old.get("baselines")
    have = {(r["config"], r["seed"]) for r in done}
    commit = old["commit"] if done and args.resume else _commit()  # where the recorded runs came from
    ordered = [c for c in ORDER if c in args.configs]
    jobs = [
        (
            name,
            seed,
            recipe,
            str(args.checkpoints)
            if (name in CAPSTONE_MODELS and seed == 0 and not args.no_checkpoints)
            else None,
        )
        for name in ordered
        for seed in args.seeds
        if (name, seed) not in have
    ]
    record = {
        "recipe": recipe,
        "seeds": list(args.seeds),
        "commit": commit,
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "workers": args.workers,
            "threads_per_worker": 1,
            "python": platform.python_version(),
        },
        "runs": done,
    }
    import torch

    record["machine"]["torch"] = torch.__version__
    start = time.perf_counter()
    print(f"{len(jobs)} runs on {args.workers} workers", flush=True)

    def save() -> None:
        record["wall_seconds"] = round(previous_seconds + time.perf_counter() - start, 1)
        record["runs"].sort(key=lambda r: (ORDER.index(r["config"]), r["seed"]))
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1) + "\n")
        tmp.chmod(0o644)
        tmp.replace(args.out)

    ctx = mp.get_context("spawn")
    with ctx.Pool(args.workers, maxtasksperchild=None) as pool:
        for result in pool.imap_unordered(run_one, jobs):
            result["commit"] = _commit()  # of this run (the record's commit is the first run's)
            record["runs"].append(result)
            save()
    # the class prior needs every training scene rendered: reuse it when the recipe is unchanged
    known = old_baselines and {k: old_baselines[k] for k in ("class_prior_loss", "class_frequencies")}
    record["baselines"] = baselines(recipe, known or None)
    save()
    if not args.no_checkpoints:
        write_checkpoint_metrics(record["runs"], recipe, args.checkpoints)
    print(f"wrote {args.out} ({len(record['runs'])} runs) in {record['wall_seconds'] / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
