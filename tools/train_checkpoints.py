"""Train the capstone models and write the checkpoints chapters 12-13 load (``make checkpoints``).

Every model in :data:`tutorial_lib.compare.CAPSTONE_MODELS` is trained from seed 0 with
:data:`tutorial_lib.train.RECIPE_SMALL` on :func:`tutorial_lib.data.standard_splits` (SETR with its
auxiliary heads, weight 0.4), then its inference weights (no auxiliary heads, float16) are written
to ``tutorial_lib/checkpoints/<name>.safetensors``. The stored weights are loaded back into a fresh
model and evaluated on the validation split; those metrics, with the training curves, go into
``metrics.json``. ``tests/test_checkpoints.py`` checks that the shipped files reproduce them.

Usage: ``python tools/train_checkpoints.py [--models fcn segformer ...] [--out DIR] [--threads N]``
"""
from __future__ import annotations

import argparse
import json
import pathlib
import platform
import sys
import time

import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tutorial_lib.compare import CAPSTONE_MODELS, build_model, inference_state_dict  # noqa: E402
from tutorial_lib.data import CLASS_NAMES, standard_splits  # noqa: E402
from tutorial_lib.hub import load_state_dict, save_state_dict  # noqa: E402
from tutorial_lib.profiling import count_params  # noqa: E402
from tutorial_lib.train import RECIPE_SMALL, evaluate, fit  # noqa: E402
from tutorial_lib.utils import seed_everything  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list(CAPSTONE_MODELS), choices=list(CAPSTONE_MODELS))
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "tutorial_lib" / "checkpoints")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    record_file = args.out / "metrics.json"
    record = json.loads(record_file.read_text()) if record_file.exists() else {}
    record.update(recipe=RECIPE_SMALL, classes=list(CLASS_NAMES), train_size=64, num_train=512, num_val=128,
                  weights_dtype="float16", torch=torch.__version__, python=platform.python_version())
    models = record.setdefault("models", {})
    train, val = standard_splits()
    for name in args.models:
        seed_everything(0)
        model = build_model(name, aux=True)
        start = time.perf_counter()
        history = fit(model, train, val, num_classes=len(CLASS_NAMES), progress=False, **RECIPE_SMALL)
        seconds = time.perf_counter() - start
        path = args.out / f"{name}.safetensors"
        save_state_dict(inference_state_dict(model), path)
        path.chmod(0o644)  # package data must be readable by every user after pip install
        shipped = build_model(name, aux=False)
        shipped.load_state_dict(load_state_dict(path), strict=True)
        result = evaluate(shipped, val, len(CLASS_NAMES))
        models[name] = {
            "label": CAPSTONE_MODELS[name].label,
            "params": count_params(shipped),
            "params_training": count_params(model),
            "val_miou": round(result.miou, 6),
            "val_pixel_accuracy": round(result.pixel_accuracy, 6),
            "val_iou": [round(float(v), 6) for v in result.iou],
            "val_miou_float32": round(history.final.miou, 6),  # before the float16 rounding of the weights
            "history": {"train_loss": [round(v, 5) for v in history.train_loss],
                        "val_steps": history.val_steps, "val_miou": [round(r.miou, 5) for r in history.val]},
            "train_seconds": round(seconds, 1),
            "file_bytes": path.stat().st_size,
        }
        print(f"{name:14s} params {models[name]['params']:>9,}  val mIoU {result.miou:.4f} "
              f"(float32 {history.final.miou:.4f})  {seconds:.0f} s", flush=True)
        record_file.write_text(json.dumps(record, indent=1) + "\n")
        record_file.chmod(0o644)


if __name__ == "__main__":
    main()
