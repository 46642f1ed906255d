"""``make bench``: CPU benchmarks of the library and the book, written as a markdown report.

Sections (issue 8):

a. SegFormer-B0, ``tutorial_lib`` vs Hugging Face ``transformers``: time ratio and peak memory
   (``benchmarks/segformer_vs_hf.py:run()``, included when present).
b. The MAC rate that SegFormer-B0's forward pass achieves (``profiling.count_macs`` / median time)
   as a fraction of the rate of a large fp32 matrix product on the same machine.
c. The execution time of every chapter notebook of ``_toc.yml``, each in a fresh kernel, executed
   as ``tools/notebooks.py execute`` does but without writing the notebook back.
d. Attention cost (``count_macs``) and time against image resolution: ViT's global multi-head
   self-attention vs SegFormer's efficient self-attention on the same stage-1 tokens.
e. Training steps per second of every configuration of ``tutorial_lib.experiments.CONFIGS`` (the
   recipe's batch and image size; forward, loss, backward and AdamW step) at 1 thread and at the
   machine's default thread count, beside what ``make experiments`` recorded.

Every time is the median of repeated runs after warm-up (the machine may be shared; the header
records its load). The report goes to ``benchmarks/reports/bench-<date>.md`` (git-ignored) and to
stdout. Nothing here is a test: ``make test`` makes no timing assertions.

    python benchmarks/run.py                      # everything
    python benchmarks/run.py --sections b,d,e     # some sections
    python benchmarks/run.py --repeats 3 --chapter-repeats 1
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time
import traceback
import warnings
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch import nn

ROOT = pathlib.Path(__file__).resolve().parent.parent
REPORTS = ROOT / "benchmarks" / "reports"
sys.path.insert(0, str(ROOT / "tools"))


# ----------------------------------------------------------------------------------- helpers

def median_time(fn: Callable[[], object], repeats: int, warmup: int = 2, min_sample: float = 0.05) -> float:
    """Median wall time of one ``fn()`` call (inference mode).

    After ``warmup`` calls, each of the ``repeats`` samples times a loop of ``number`` calls, with
    ``number`` chosen so that a sample lasts at least ``min_sample`` seconds (a millisecond call is
    otherwise dominated by timer and scheduler noise); the result is the median sample / ``number``.
    """
    with torch.inference_mode():
        for _ in range(warmup):
            fn()
        start = time.perf_counter()
        fn()  # calibration call, after warm-up (first calls pay for kernel selection and allocation)
        once = time.perf_counter() - start
        number = max(1, int(min_sample / max(once, 1e-6)) + 1) if once < min_sample else 1
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(number):
                fn()
            samples.append((time.perf_counter() - start) / number)
    return statistics.median(samples)


def macs_of(model: nn.Module, *inputs: torch.Tensor) -> int:
    from tutorial_lib.profiling import count_macs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fvcore/jit deprecation chatter; count_macs reports missing rules itself
        return count_macs(model, *inputs).total


def cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def header(args: argparse.Namespace) -> str:
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return "\n".join([
        f"# Benchmarks — {dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
        "",
        "| | |",
        "|---|---|",
        f"| CPU | {cpu_model()} |",
        f"| cores | {os.cpu_count()} logical, {affinity} usable by this process |",
        f"| load average (1, 5, 15 min) at start | {load} |",
        f"| torch | {torch.__version__}, {torch.get_num_threads()} intra-op threads, "
        f"{torch.get_num_interop_threads()} inter-op threads |",
        f"| Python | {platform.python_version()} on {platform.system()} {platform.release()} |",
        f"| commit | {git_commit()} |",
        f"| repetitions | median of {args.repeats} runs after warm-up (chapters: {args.chapter_repeats}) |",
        "",
        "Timings on a shared machine are noisy: compare numbers within one report, not across reports.",
    ])


# ----------------------------------------------------------------------------------- sections

def section_a(args: argparse.Namespace) -> str:
    path = ROOT / "benchmarks" / "segformer_vs_hf.py"
    if not path.exists():
        return "## SegFormer-B0: tutorial_lib vs transformers\n\n`benchmarks/segformer_vs_hf.py` does not exist yet."
    spec = importlib.util.spec_from_file_location("segformer_vs_hf", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run(repeats=max(args.repeats, 5))


def matmul_rate(n: int, repeats: int) -> float:
    """MACs per second of an ``n×n @ n×n`` fp32 matrix product (``n³`` MACs)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    return n ** 3 / median_time(lambda: a @ b, repeats)


def section_b(args: argparse.Namespace) -> str:
    from tutorial_lib.models.segformer import segformer_b0

    torch.manual_seed(0)
    size = 512
    model = segformer_b0(num_classes=150).eval()
    folded = model.fold_decoder()
    x = torch.randn(1, 3, size, size)
    rows = []
    matmul = {n: matmul_rate(n, args.repeats) for n in (1024, 2048, 4096)}
    best = max(matmul.values())
    for name, m in (("SegFormer-B0, folded decoder", folded), ("SegFormer-B0, paper decoder", model),
                    ("MiT-B0 encoder only", model.encoder)):
        macs = macs_of(m, x)
        seconds = median_time(lambda: m(x), args.repeats)
        rows.append((name, macs, seconds, macs / seconds))
    lines = [
        "## Achieved MAC rate of SegFormer-B0 vs a large fp32 matmul",
        "",
        f"One 1×3×{size}×{size} image, 150 classes, eval, `torch.inference_mode`. MACs from "
        "`tutorial_lib.profiling.count_macs` (convolutions, linear layers, matrix products and attention; "
        "normalisation and elementwise ops count zero, as in the paper's tables).",
        "",
        "| fp32 matmul n×n @ n×n | MACs | GMAC/s |",
        "|---|---|---|",
    ]
    lines += [f"| n = {n} | {n ** 3 / 1e9:.2f} G | {rate / 1e9:.1f} |" for n, rate in matmul.items()]
    lines += [
        "",
        f"Reference rate = the best of these: **{best / 1e9:.1f} GMAC/s**.",
        "",
        "| forward | GMACs | median time (s) | achieved GMAC/s | fraction of matmul rate |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {name} | {macs / 1e9:.3f} | {s:.3f} | {rate / 1e9:.1f} | **{rate / best:.1%}** |"
              for name, macs, s, rate in rows]
    lines += ["", "The gap is the cost of the parts that carry no MACs in this count (LayerNorm, GELU, "
              "softmax, reshapes, the bilinear upsampling of the decoder) and of small or "
              "memory-bound products (depthwise 3×3 convolutions in Mix-FFN, 32-channel layers) "
              "that cannot reach a large matmul's arithmetic intensity."]
    return "\n".join(lines)


def section_c(args: argparse.Namespace) -> str:
    import nbformat
    from nbclient import NotebookClient

    import notebooks

    chapters = notebooks.chapters()
    lines = ["## Chapter execution times", "",
             f"Each chapter of `_toc.yml` executed in a fresh `python3` kernel as `tools/notebooks.py execute` "
             f"does (setup cell inserted, its folder as working directory), not written back; wall time "
             f"including kernel start-up; median of {args.chapter_repeats} run(s). Budget: 60 s on 2 cores.", "",
             "| chapter | median time (s) | runs (s) | within 60 s |", "|---|---|---|---|"]
    total = 0.0
    for path in chapters:
        runs: List[float] = []
        error = ""
        for _ in range(args.chapter_repeats):
            nb = nbformat.read(path, as_version=4)
            notebooks.apply_setup(nb)
            client = NotebookClient(nb, timeout=900, kernel_name="python3",
                                    resources={"metadata": {"path": str(path.parent)}})
            start = time.perf_counter()
            try:
                client.execute()
            except Exception as err:  # noqa: BLE001 - report and go on with the other chapters
                error = f"fails: {type(err).__name__}"
                break
            runs.append(time.perf_counter() - start)
        name = str(path.relative_to(ROOT))
        if error:
            lines.append(f"| {name} | – | {error} | – |")
            continue
        med = statistics.median(runs)
        total += med
        lines.append(f"| {name} | {med:.1f} | {', '.join(f'{r:.1f}' for r in runs)} | {'yes' if med <= 60 else '**no**'} |")
    lines += ["", f"Total (medians): {total:.0f} s for {len(chapters)} chapters."]
    return "\n".join(lines)


class _OnGrid(nn.Module):
    """Binds the token grid ``(H, W)`` so that an ``f(x, H, W)`` layer can be traced with one input."""

    def __init__(self, layer: nn.Module, height: int, width: int) -> None:
        super().__init__()
        self.layer, self.height, self.width = layer, height, width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x, self.height, self.width)


def section_d(args: argparse.Namespace) -> str:
    from tutorial_lib.layers.attention import Attention
    from tutorial_lib.layers.efficient_attention import EfficientSelfAttention

    dim, heads, sr = 32, 1, 8  # SegFormer-B0 stage 1 (stride 4): C=32, 1 head, reduction ratio 8
    torch.manual_seed(0)
    vit = Attention(dim, num_heads=heads).eval()
    esa = EfficientSelfAttention(dim, num_heads=heads, sr_ratio=sr).eval()
    lines = ["## Attention cost against resolution: ViT attention vs efficient self-attention", "",
             f"Stage-1 tokens of SegFormer (stride 4) for a square image: N = (side/4)² tokens of C = {dim}, "
             f"{heads} head. ViT: `tutorial_lib.layers.attention.Attention` (global, N×N); SegFormer: "
             f"`EfficientSelfAttention(sr_ratio={sr})` (keys and values from N/{sr * sr} tokens). "
             "Both call `scaled_dot_product_attention`; MACs by `count_macs` (projections included).", "",
             "| image side | tokens N | ViT GMACs | efficient GMACs | MAC ratio | ViT time (ms) | efficient time (ms) | time ratio |",
             "|---|---|---|---|---|---|---|---|"]
    for side in args.attention_sides:
        h = w = side // 4
        x = torch.randn(1, h * w, dim)
        grid = _OnGrid(esa, h, w)
        macs_vit, macs_esa = macs_of(vit, x), macs_of(grid, x)
        reps = args.repeats if h * w <= 128 * 128 else max(1, min(args.repeats, 3))
        t_vit = median_time(lambda: vit(x), reps)
        t_esa = median_time(lambda: grid(x), args.repeats)
        lines.append(f"| {side} | {h * w:,} | {macs_vit / 1e9:.3f} | {macs_esa / 1e9:.4f} | {macs_vit / macs_esa:.3g}× "
                     f"| {t_vit * 1e3:.3g} | {t_esa * 1e3:.3g} | {t_vit / t_esa:.3g}× |")
    lines += ["", "ViT's cost grows with N² (×16 per doubling of the side); the efficient attention's "
              f"N·N/{sr * sr} term grows the same way but {sr * sr}× smaller, and its linear terms "
              "(projections, the reduction convolution) dominate at small sizes."]
    return "\n".join(lines)


def median_step_time(step: Callable[[], object], repeats: int, warmup: int = 3, min_sample: float = 0.2) -> float:
    """Median wall time of one training ``step()`` (gradients on): as :func:`median_time`, but outside
    inference mode, with more warm-up (the optimizer allocates its state in its first step) and
    samples of at least ``min_sample`` seconds."""
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    step()
    once = time.perf_counter() - start
    number = max(1, int(min_sample / max(once, 1e-6)) + 1) if once < min_sample else 1
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            step()
        samples.append((time.perf_counter() - start) / number)
    return statistics.median(samples)


def training_step(name: str, images: torch.Tensor, masks: torch.Tensor) -> Callable[[], float]:
    """One step of ``make experiments``' training of configuration ``name`` on a fixed batch: forward
    (with the auxiliary heads used in training), loss, backward, AdamW step."""
    from tutorial_lib.experiments import RECIPE, build_config
    from tutorial_lib.train import segmentation_loss

    torch.manual_seed(0)
    model = build_config(name, aux=True).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=RECIPE["lr"], weight_decay=RECIPE["weight_decay"])

    def step() -> float:
        loss = segmentation_loss(model(images), masks, 255, RECIPE["aux_weight"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def section_e(args: argparse.Namespace) -> str:
    from tutorial_lib import experiments
    from tutorial_lib.data import SyntheticScenes
    from tutorial_lib.experiments import CONFIGS, RECIPE
    from tutorial_lib.profiling import count_params

    batch, size = RECIPE["batch_size"], RECIPE["train_size"]
    scenes = SyntheticScenes(batch, size=size, seed=0)
    images = torch.stack([scenes[i][0] for i in range(batch)])
    masks = torch.stack([scenes[i][1] for i in range(batch)])
    default = torch.get_num_threads()
    counts = [1] if default == 1 else [1, default]
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    try:
        machine = experiments.load_results()["machine"]
        recorded_note = (f"recorded: the mean over the seeds of `steps_per_second` in "
                         f"`tutorial_lib/results/experiments.json` (whole runs, data loading included, "
                         f"{machine.get('workers', '?')} runs side by side with "
                         f"{machine.get('threads_per_worker', '?')} thread each, on "
                         f"{machine.get('cpus', '?')} CPUs)")
    except FileNotFoundError:
        recorded_note = "recorded: no `experiments.json` (run `make experiments`)"
    rates: Dict[str, Dict[int, float]] = {}
    try:
        for name in CONFIGS:
            rates[name] = {}
            for threads in counts:
                torch.set_num_threads(threads)
                rates[name][threads] = 1.0 / median_step_time(training_step(name, images, masks), args.repeats)
    finally:
        torch.set_num_threads(default)
    head = ["configuration", "params"] + [f"steps/s, {n} thread{'s' if n > 1 else ''}" for n in counts]
    head += (["speed-up"] if len(counts) > 1 else []) + ["recorded steps/s"]
    lines = [
        "## Training steps per second of the experiments' configurations",
        "",
        f"One training step of `make experiments` (`experiments.RECIPE`): a batch of {batch} scenes of "
        f"{size}×{size} px (fixed, already rendered), forward with the auxiliary heads used in training, "
        f"`train.segmentation_loss`, backward, AdamW step. Median over {args.repeats} samples after 3 "
        "warm-up steps; each sample times enough steps to last at least 0.2 s. At 1 thread and at this "
        f"machine's default thread count ({default}); {recorded_note}. Load average (1, 5, 15 min) at the "
        f"start of this section: {load}; on a machine busy with other work, the multi-thread column "
        "suffers first (threads wait for each other).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for name, rate in rates.items():
        params = count_params(experiments.build_config(name))
        cells = [f"{CONFIGS[name].label} (`{name}`)", f"{params:,}"] + [f"{rate[n]:.2f}" for n in counts]
        if len(counts) > 1:
            cells.append(f"{rate[counts[-1]] / rate[1]:.2f}×")
        try:
            recorded = statistics.fmean(experiments.metric_values(name, "steps_per_second"))
            cells.append(f"{recorded:.2f}")
        except (ValueError, FileNotFoundError):
            cells.append("–")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "The recorded rate includes what a training run adds to the step (loading and collating the "
              "batch, setting the learning rate, reading the loss) and ran beside other runs on another "
              "load, so compare it with the 1-thread column only roughly."]
    return "\n".join(lines)


SECTIONS: Dict[str, Callable[[argparse.Namespace], str]] = {"a": section_a, "b": section_b, "c": section_c,
                                                            "d": section_d, "e": section_e}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", default="a,b,c,d,e", help="comma-separated subset of a,b,c,d,e")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per measurement (median)")
    parser.add_argument("--chapter-repeats", type=int, default=1, help="runs per chapter notebook (median)")
    parser.add_argument("--attention-sides", type=lambda s: [int(v) for v in s.split(",")],
                        default=[128, 256, 512, 1024], help="image sides for section d")
    parser.add_argument("--output", type=pathlib.Path, default=None, help="report path (default: benchmarks/reports/)")
    args = parser.parse_args(argv)
    wanted = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SECTIONS]
    if unknown:
        parser.error(f"--sections: expected letters from {list(SECTIONS)}, got {unknown}")
    if args.repeats < 1 or args.chapter_repeats < 1:
        parser.error(f"--repeats/--chapter-repeats: expected >= 1, got {args.repeats}/{args.chapter_repeats}")

    parts = [header(args)]
    failed = []
    for key in wanted:
        print(f"bench: section {key} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        try:
            parts.append(SECTIONS[key](args))
        except Exception:  # noqa: BLE001 - a failing section is reported, the others still run
            failed.append(key)
            parts.append(f"## Section {key} failed\n\n```\n{traceback.format_exc()}```")
        print(f"bench: section {key} took {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    report = "\n\n".join(parts) + "\n"
    output = args.output or REPORTS / f"bench-{dt.datetime.now().strftime('%Y-%m-%d_%H%M')}.md"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report)
    print(report)
    print(f"bench: report written to {output}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
