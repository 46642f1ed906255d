"""SegFormer-B0 forward on CPU: ``tutorial_lib`` (folded decoder) vs Hugging Face ``transformers``.

Setting (issue 5, item 6): B0, 150 classes, one 512×512 image, eval mode, ``torch.inference_mode``,
the *same* weights in both (a randomly initialised Hugging Face model written with
``save_pretrained`` and converted with :func:`tutorial_lib.hub.segformer_from_hf_state_dict`).
Both models run in the same process with interleaved repetitions (so machine load hits both
alike) and the median is reported. Our model without the fold is timed too, and the encoder
alone, to show where the time goes.

Peak memory is measured in a fresh subprocess per implementation, because a process's peak
resident set size only grows: the subprocess imports its library, builds the model, resets the
kernel's high-water mark (``/proc/self/clear_refs``), records its resident set size, runs one
forward pass and reads the new high-water mark (``VmHWM`` in ``/proc/self/status``). The
difference is the memory the forward pass needed on top of the model (activations, workspace);
the peak itself includes the interpreter and the imported libraries (``transformers`` imports
more). ``tracemalloc`` would miss torch's C++ allocations, and ``getrusage``'s ``ru_maxrss``
survives ``exec`` (it would report the parent's peak), hence ``VmHWM``.

Timing is reported with one thread and with torch's default thread count: on a shared machine
several threads per process can lose more to waiting than they gain.

Run: ``python benchmarks/segformer_vs_hf.py`` (or ``make bench``, which calls :func:`run`).
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Sequence

import torch

SIZE = 512
NUM_CLASSES = 150
TARGET_RATIO = 0.5


def _hf_model(folder: str):
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    torch.manual_seed(0)
    model = SegformerForSemanticSegmentation(SegformerConfig(num_labels=NUM_CLASSES)).eval()
    model.save_pretrained(folder)
    return model


def _ours(folder: str, fold: bool = True):
    from tutorial_lib.hub import load_state_dict, segformer_from_hf_state_dict

    model = segformer_from_hf_state_dict(load_state_dict(os.path.join(folder, "model.safetensors")), "b0")
    return model.fold_decoder() if fold else model


def _time(fns: Dict[str, Callable[[], torch.Tensor]], repeats: int, warmup: int = 2) -> Dict[str, List[float]]:
    times: Dict[str, List[float]] = {k: [] for k in fns}
    with torch.inference_mode():
        for _ in range(warmup):
            for fn in fns.values():
                fn()
        for _ in range(repeats):
            for name, fn in fns.items():  # interleaved: load spikes hit every implementation
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return times


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB -> MB
    raise RuntimeError(f"{field} not found in /proc/self/status")


def measure_memory(which: str, folder: str) -> Dict[str, float]:
    """In this (fresh) process: build ``which`` ('hf', 'ours', 'ours_unfolded'), run once, report RSS."""
    if which == "hf":
        from transformers import SegformerForSemanticSegmentation

        model = SegformerForSemanticSegmentation.from_pretrained(folder).eval()
        fn = lambda x: model(pixel_values=x).logits  # noqa: E731
    else:
        model = _ours(folder, fold=which == "ours")
        fn = model
    x = torch.randn(1, 3, SIZE, SIZE)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak RSS (VmHWM) to the current RSS
    before = _status_mb("VmRSS")
    with torch.inference_mode():
        fn(x)
    peak = _status_mb("VmHWM")
    return {"before_mb": before, "peak_mb": peak, "forward_mb": peak - before}


def _memory_in_subprocess(which: str, folder: str) -> Dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--memory", which, folder], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(repeats: int = 15, threads: Sequence[int] = (1, 0)) -> str:
    """Benchmark and return a markdown section (the closing note's numbers).

    ``threads``: the thread counts to time with (0 = torch's default for this machine).
    """
    default_threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as folder:
        hf = _hf_model(folder)
        ours, unfolded = _ours(folder), _ours(folder, fold=False)
        x = torch.randn(1, 3, SIZE, SIZE)
        with torch.inference_mode():
            ref = hf(pixel_values=x).logits
            diff = max((ours(x) - ref).abs().max().item(), (unfolded(x) - ref).abs().max().item())
        fns = {
            "transformers": lambda: hf(pixel_values=x).logits,
            "tutorial_lib, folded decoder": lambda: ours(x),
            "tutorial_lib, paper decoder": lambda: unfolded(x),
            "tutorial_lib, encoder only": lambda: ours.encoder(x),
        }
        medians: Dict[int, Dict[str, float]] = {}
        try:
            for n in threads:
                n = n or default_threads
                torch.set_num_threads(n)
                medians[n] = {k: statistics.median(v) for k, v in _time(fns, repeats).items()}
        finally:
            torch.set_num_threads(default_threads)
        memory = {name: _memory_in_subprocess(which, folder) for name, which in
                  (("transformers", "hf"), ("tutorial_lib, folded decoder", "ours"),
                   ("tutorial_lib, paper decoder", "ours_unfolded"))}
    counts = list(medians)
    lines = [
        "## SegFormer-B0: tutorial_lib vs transformers (CPU)",
        "",
        f"B0, {NUM_CLASSES} classes, 1×3×{SIZE}×{SIZE}, eval, `torch.inference_mode`, the same weights in both "
        f"(max |Δ logits| = {diff:.1e}); torch {torch.__version__}, median of {repeats} interleaved runs per "
        f"thread count; memory with torch's default threads ({default_threads}).",
        "",
        "| implementation | " + " | ".join(f"time, {n} thread(s) (s) | vs transformers" for n in counts)
        + " | peak RSS (MB) | forward adds (MB) |",
        "|---|" + "---|---|" * len(counts) + "---|---|",
    ]
    for name in fns:
        cols = [f"{medians[n][name]:.3f} | {medians[n][name] / medians[n]['transformers']:.2f}×" for n in counts]
        mem = memory.get(name)
        mem_cols = f"{mem['peak_mb']:.0f} | {mem['forward_mb']:.0f}" if mem else "– | –"
        lines.append(f"| {name} | " + " | ".join(cols) + f" | {mem_cols} |")
    lines.append("")
    for n in counts:
        ratio = medians[n]["tutorial_lib, folded decoder"] / medians[n]["transformers"]
        verdict = "meets" if ratio <= TARGET_RATIO else "misses"
        lines.append(f"- **{n} thread(s): ours (folded) / transformers = {ratio:.2f}×** — {verdict} the "
                     f"target ≤ {TARGET_RATIO}×.")
    lines += ["", "Peak RSS is per fresh process (interpreter and libraries included); “forward adds” is the "
              "growth of the peak over the resident size just before the forward pass."]
    return "\n".join(lines)

if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--memory":
        print(json.dumps(measure_memory(sys.argv[2], sys.argv[3])))
    else:
        print(run())
