"""Counting parameters and multiply-accumulates, and tracing shapes through a model.

Cost is reported as **MACs** (multiply-accumulates): one MAC is one multiplication
and one addition. The SegFormer paper calls the same quantity "FLOPs" and DeepLabV3+
calls it "Multiply-Adds". ``count_macs`` uses fvcore's tracer with an explicit
policy:

* convolutions, linear layers, matrix products, ``einsum`` and
  ``scaled_dot_product_attention`` are counted as MACs (bias additions are not);
* normalisation, pooling and upsampling are counted only with
  ``include_elementwise=True`` (fvcore's elementwise estimates); by default they
  count zero, as in the papers' tables;
* activations, softmax, additions, reshapes and other elementwise or data-movement
  ops are always zero;
* any other operator that carries arithmetic and has no rule raises a
  ``UserWarning`` naming it, so no cost is silently missing.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "count_params",
    "count_macs",
    "count_macs_meta",
    "space_to_batch_extra_macs",
    "MacCount",
    "shape_trace",
    "ShapeTrace",
    "sdpa_mac_handle",
    "Timing",
    "time_modules",
]

# Operators that cost no MACs by this project's policy (elementwise, activation,
# data movement).
ZERO_COST_OPS: Tuple[str, ...] = (
    "aten::add",
    "aten::add_",
    "aten::sub",
    "aten::mul",
    "aten::mul_",
    "aten::div",
    "aten::neg",
    "aten::relu",
    "aten::relu_",
    "aten::gelu",
    "aten::silu",
    "aten::sigmoid",
    "aten::tanh",
    "aten::hardtanh",
    "aten::hardtanh_",
    "aten::softmax",
    "aten::log_softmax",
    "aten::dropout",
    "aten::feature_dropout",
    "aten::rsub",
    "aten::exp",
    "aten::sqrt",
    "aten::rsqrt",
    "aten::pow",
    "aten::mean",
    "aten::unflatten",  # a view, like reshape (which fvcore ignores)
    "aten::sum",
    "aten::max",
    "aten::min",
    "aten::clamp",
    "aten::abs",
    "aten::erf",
    "aten::fill_",
    "aten::zero_",
    "aten::zeros",
    "aten::ones",
    "aten::copy_",
    "aten::expand_as",
    "aten::masked_fill",
    "aten::where",
    "aten::eq",
    "aten::ne",
    "aten::gt",
    "aten::lt",
    "aten::ge",
    "aten::argmax",
    "aten::flip",
    "aten::roll",
    "aten::pad",
    "aten::constant_pad_nd",
    "aten::reflection_pad2d",
    "aten::im2col",
    "aten::col2im",
    "aten::unfold",
    "aten::one_hot",
    "aten::repeat",
    "aten::repeat_interleave",
    "aten::linspace",
    "aten::arange",
    "aten::scatter_",
    "aten::gather",
    "aten::index",
    "aten::index_select",
    "aten::topk",
    "aten::sort",
    "aten::cumsum",
    "aten::full",
    "aten::full_like",
    "aten::zeros_like",
    "aten::ones_like",
    "aten::lift_fresh",
    "aten::detach",
    "aten::type_as",
    "aten::to",
    "aten::bernoulli_",
    "aten::floor_divide",
    "aten::remainder",
    "aten::floor",
    "aten::ceil",
    "aten::round",
    "aten::square",
    "aten::reciprocal",
    "aten::norm",
    "aten::linalg_vector_norm",
    "aten::var",
    "aten::std",
    "aten::cos",
    "aten::sin",
    "aten::log",
    "aten::log1p",
    "aten::trunc",
)
# Normalisation, pooling and upsampling: zero by default, fvcore's estimate when
# asked for.
ELEMENTWISE_OPS: Tuple[str, ...] = (
    "aten::batch_norm",
    "aten::group_norm",
    "aten::layer_norm",
    "aten::instance_norm",
    "aten::upsample_nearest2d",
    "aten::upsample_bilinear2d",
    "aten::upsample_bicubic2d",
    "aten::_upsample_bilinear2d_aa",
    "aten::_upsample_bicubic2d_aa",
    "aten::adaptive_avg_pool2d",
    "aten::avg_pool2d",
    "aten::max_pool2d",
    "aten::grid_sampler",
)


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``model`` (buffers such as BN running statistics
    excluded)."""
    if not isinstance(model, nn.Module):
        raise ValueError(
            f"count_params: expected an nn.Module, got {type(model).__name__}"
        )
    return sum(
        p.numel()
        for p in model.parameters()
        if p.requires_grad or not trainable_only
    )


def _shape(value: Any) -> Optional[List[int]]:
    ttype = value.type()
    try:
        return list(ttype.sizes())
    except (AttributeError, RuntimeError):
        return None


def sdpa_mac_handle(inputs: List[Any], outputs: List[Any]) -> int:
    """fvcore handle for ``aten::scaled_dot_product_attention``.

    ``Q: (..., L, E)``, ``K: (..., S, E)``, ``V: (..., S, Ev)``: the product ``QKᵀ``
    costs ``L·S·E`` MACs per batch-head and ``softmax(·)V`` costs ``L·S·Ev``;
    softmax and scaling are elementwise and count zero.
    """
    q, k, v = (_shape(t) for t in inputs[:3])
    if q is None or k is None or v is None:
        raise ValueError(
            "count_macs: could not read the shapes of the attention inputs"
        )
    batch = 1
    for d in q[:-2]:
        batch *= d
    length_q, embed = q[-2], q[-1]
    length_kv, embed_v = k[-2], v[-1]
    return batch * length_q * length_kv * (embed + embed_v)


def _zero_handle(inputs: List[Any], outputs: List[Any]) -> int:
    return 0


@dataclass
class MacCount:
    """The result of :func:`count_macs`: a total plus breakdowns by module and
    operator."""

    total: int
    by_module: Dict[str, int] = field(repr=False)
    by_operator: Dict[str, int] = field(repr=False)
    uncounted: Dict[str, int] = field(repr=False)

    @property
    def giga(self) -> float:
        """Total in GMACs (10⁹)."""
        return self.total / 1e9

    def __int__(self) -> int:
        return self.total

    def __repr__(self) -> str:
        return f"MacCount(total={self.total:,} = {self.giga:.3f} GMACs)"


def count_macs(
    model: nn.Module, *inputs: Any, include_elementwise: bool = False
) -> MacCount:
    """Count the multiply-accumulates of ``model(*inputs)`` with fvcore (policy in
    module doc).

    The model is traced once; the count is exact for the given input shapes. Run it
    on small inputs or on cheap models: the trace executes a real forward pass.
    """
    from fvcore.nn import FlopCountAnalysis

    if not isinstance(model, nn.Module):
        raise ValueError(
            f"count_macs: expected an nn.Module, got {type(model).__name__}"
        )
    if not inputs:
        raise ValueError("count_macs: expected at least one input tensor, got none")
    analysis = FlopCountAnalysis(model, inputs if len(inputs) > 1 else inputs[0])
    analysis.set_op_handle("aten::scaled_dot_product_attention", sdpa_mac_handle)
    for op in ZERO_COST_OPS:
        analysis.set_op_handle(op, None)
    if not include_elementwise:
        # replaces fvcore's default estimate for these ops
        for op in ELEMENTWISE_OPS:
            analysis.set_op_handle(op, _zero_handle)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
            total = int(analysis.total())
            by_module = {k: int(v) for k, v in analysis.by_module().items()}
            by_operator = {k: int(v) for k, v in analysis.by_operator().items()}
            uncounted = dict(analysis.unsupported_ops())
    finally:
        model.train(was_training)
    if uncounted:
        warnings.warn(
            f"count_macs: no MAC rule for operators {sorted(uncounted)}; they were "
            "counted "
            "as zero. Add them to tutorial_lib.profiling.ZERO_COST_OPS if that is "
            "right.",
            UserWarning,
            stacklevel=2,
        )
    return MacCount(total, by_module, by_operator, uncounted)


def _forward_with_hooks(
    model: nn.Module, input_shapes: Sequence[Sequence[int]], hooks: Dict[str, Any]
) -> None:
    """Run ``model`` once on empty inputs of ``input_shapes`` (on the device of its
    parameters, e.g. ``meta``) with forward ``hooks`` (module name → hook) attached,
    in eval mode, without gradients.
    """
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    modules = dict(model.named_modules())
    handles = [
        modules[name].register_forward_hook(hook) for name, hook in hooks.items()
    ]
    was_training = model.training
    model.eval()  # BatchNorm in training mode refuses a batch of one 1×1 map (image pooling)
    try:
        with torch.no_grad():
            model(*[torch.empty(tuple(s), device=device) for s in input_shapes])
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()


def _pop(stack: List[str]) -> None:
    stack.pop()  # a forward hook must return None, or it replaces the output


def count_macs_meta(model: nn.Module, *input_shapes: Sequence[int]) -> MacCount:
    """Count the MACs of a convolutional model from module shapes, fast, e.g. on the
    ``meta`` device.

    For models too large to run forward many times (Xception-65 at 513×513 takes
    seconds on a CPU, and fvcore's tracer cannot trace ``meta`` tensors): build the
    model under ``with torch.device("meta"):`` and pass input *shapes*; inputs are
    created on the device of the model's parameters. Forward hooks count every
    ``nn.Conv1d/2d/3d`` (groups and dilation included) and ``nn.Linear`` as
    :func:`count_macs` does (bias not counted; everything else zero), and every call
    of ``F.scaled_dot_product_attention`` with the rule of ``sdpa_mac_handle``. It
    agrees with :func:`count_macs` for models whose arithmetic lives in those — the
    tests check this for DeepLabV3+, SETR and SegFormer — and refuses models with
    ``nn.MultiheadAttention`` or transposed convolutions, which it cannot see through.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(
            f"count_macs_meta: expected an nn.Module, got {type(model).__name__}"
        )
    if not input_shapes:
        raise ValueError(
            "count_macs_meta: expected at least one input shape, got none"
        )
    refused = (nn.MultiheadAttention, nn.modules.conv._ConvTransposeNd, nn.Bilinear)
    bad = sorted(
        {type(m).__name__ for m in model.modules() if isinstance(m, refused)}
    )
    if bad:
        raise ValueError(
            f"count_macs_meta: cannot count {bad} from module shapes; use "
            "count_macs"
        )
    by_module: Dict[str, int] = {}
    by_operator: Dict[str, int] = {"conv": 0, "linear": 0}

    def hook(mod: nn.Module, args: Any, out: torch.Tensor, name: str = "") -> None:
        if isinstance(mod, nn.modules.conv._ConvNd):
            macs = (
                out.numel()
                * (mod.in_channels // mod.groups)
                * math.prod(mod.kernel_size)
            )
            by_operator["conv"] += macs
        else:
            macs = out.numel() * mod.in_features
            by_operator["linear"] += macs
        parts = name.split(".") if name else []
        for i in range(len(parts) + 1):
            key = ".".join(parts[:i])
            by_module[key] = by_module.get(key, 0) + macs

    hooks = {
        name: (lambda m, a, o, name=name: hook(m, a, o, name))
        for name, mod in model.named_modules()
        if isinstance(mod, (nn.modules.conv._ConvNd, nn.Linear))
    }
    # F.scaled_dot_product_attention is a function, not a module: count it as it is
    # called (the rule of sdpa_mac_handle), charged to the modules running it.
    running: List[str] = []
    handles = []
    for name, mod in model.named_modules():
        handles.append(
            mod.register_forward_pre_hook(
                lambda m, a, name=name: running.append(name)
            )
        )
        handles.append(mod.register_forward_hook(lambda m, a, o: _pop(running)))

    class _CountSDPA(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func is F.scaled_dot_product_attention:
                # (..., L, E), (..., S, E), (..., S, Ev)
                q, k, v = (t.shape for t in args[:3])
                macs = math.prod(q[:-2]) * q[-2] * k[-2] * (q[-1] + v[-1])
                by_operator["scaled_dot_product_attention"] = (
                    by_operator.get("scaled_dot_product_attention", 0) + macs
                )
                parts = running[-1].split(".") if running and running[-1] else []
                for i in range(len(parts) + 1):
                    key = ".".join(parts[:i])
                    by_module[key] = by_module.get(key, 0) + macs
            return func(*args, **kwargs)

    try:
        with _CountSDPA():
            _forward_with_hooks(model, input_shapes, hooks)
    finally:
        for h in handles:
            h.remove()
    return MacCount(
        by_module.get("", 0),
        by_module,
        {k: v for k, v in by_operator.items() if v},
        {},
    )


def space_to_batch_extra_macs(
    model: nn.Module, *input_shapes: Sequence[int]
) -> int:
    """MACs that TensorFlow's atrous convolution computes beyond the output, summed
    over ``model``.

    TensorFlow runs a convolution with rate ``r > 1`` as ``space_to_batch`` →
    ordinary convolution → ``batch_to_space``, and pads the map to a multiple of
    ``r`` first; a profiler of that graph counts ``⌈H/r⌉r × ⌈W/r⌉r`` output
    positions instead of ``H × W`` (a 33×33 map at rate 6 is computed as 36×36). Run
    it on a ``meta`` model like :func:`count_macs_meta`.
    """
    extra = [0]

    def hook(conv: nn.Conv2d, args: object, out: torch.Tensor) -> None:
        r = conv.dilation[0]
        if r > 1:
            h, w = out.shape[-2:]
            padded = -(-h // r) * r * (-(-w // r) * r)
            per_position = (
                out.shape[0]
                * out.shape[1]
                * (conv.in_channels // conv.groups)
                * conv.kernel_size[0] ** 2
            )
            extra[0] += (padded - h * w) * per_position

    _forward_with_hooks(
        model,
        input_shapes,
        {
            name: hook
            for name, m in model.named_modules()
            if isinstance(m, nn.Conv2d)
        },
    )
    return extra[0]


@dataclass
class ShapeTrace:
    """A table of ``module name | type | output shape | parameters`` from
    :func:`shape_trace`."""

    rows: List[Tuple[str, str, str, int]]

    def __repr__(self) -> str:
        header = ("module", "type", "output shape", "params")
        table = [header] + [(n, t, s, f"{p:,}") for n, t, s, p in self.rows]
        widths = [max(len(r[i]) for r in table) for i in range(4)]
        lines = [
            "  ".join(
                c.ljust(w) if i < 3 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths))
            )
            for r in table
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        cells = "".join(
            f"<tr><td><code>{n}</code></td><td>{t}</td><td><code>{s}</code></td>"
            f"<td style='text-align:right'>{p:,}</td></tr>"
            for n, t, s, p in self.rows
        )
        return (
            "<table><thead><tr><th>module</th><th>type</th><th>output "
            "shape</th><th>params</th>"
            f"</tr></thead><tbody>{cells}</tbody></table>"
        )


def _describe(out: Any) -> str:
    if isinstance(out, torch.Tensor):
        return "(" + ", ".join(str(d) for d in out.shape) + ")"
    if isinstance(out, (list, tuple)):
        parts = [_describe(o) for o in out]
        if len(parts) > 1 and len(set(parts)) == 1:
            # e.g. four equal maps: one shape, counted
            return f"{len(parts)} × {parts[0]}"
        return "[" + ", ".join(parts) + "]"
    if isinstance(out, dict):
        return "{" + ", ".join(f"{k}: {_describe(v)}" for k, v in out.items()) + "}"
    return type(out).__name__


def shape_trace(
    model: nn.Module,
    *inputs: Any,
    depth: int = 1,
    names: Optional[Sequence[str]] = None,
) -> ShapeTrace:
    """Run ``model(*inputs)`` once and list each submodule's output shape, in call
    order.

    ``depth`` selects modules by the number of dots in their name (1 = direct
    children, 2 = grandchildren too); ``names`` selects modules explicitly instead.
    A selected container (``nn.Sequential``/``nn.ModuleList``) that the model
    iterates instead of calling (ViT's ``blocks``) never runs a hook of its own: its
    children are listed in its place.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(
            f"shape_trace: expected an nn.Module, got {type(model).__name__}"
        )
    if depth < 1:
        raise ValueError(f"shape_trace: expected depth >= 1, got {depth}")
    rows: List[Tuple[str, str, str, int]] = []
    handles = []
    modules = dict(model.named_modules())
    if names is not None:
        missing = [n for n in names if n not in modules]
        if missing:
            raise ValueError(
                f"shape_trace: no submodule named {missing}; available: "
                f"{list(modules)[1:12]}..."
            )
        selected = list(names)
    else:
        selected = [n for n in modules if n and n.count(".") < depth]
    containers = {
        n
        for n in selected
        if isinstance(modules[n], (nn.Sequential, nn.ModuleList))
    }
    children = {
        f"{c}.{k}": c for c in containers for k, _ in modules[c].named_children()
    }
    fired = set()
    events: List[Tuple[str, Tuple[str, str, str, int]]] = []
    for name in [*selected, *(c for c in children if c not in selected)]:
        module = modules[name]

        def hook(mod: nn.Module, args: Any, out: Any, name: str = name) -> None:
            fired.add(name)
            events.append(
                (
                    name,
                    (name, type(mod).__name__, _describe(out), count_params(mod)),
                )
            )

        handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
    selected_set = set(selected)
    for name, row in events:
        # a child row stands in for its container only when the container itself
        # never ran
        if name in selected_set or children[name] not in fired:
            rows.append(row)
    return ShapeTrace(rows)


@dataclass(frozen=True)
class Timing:
    """Seconds per call of one module from :func:`time_modules`, each the minimum
    over the rounds (other work can only add time): ``cpu`` is the CPU time of the
    calling thread (``time.thread_time``), ``wall`` the wall-clock time; ``median``
    is the median wall time. ``busy = wall / cpu`` says how much of the wall time
    the thread waited (near 1 on a quiet machine); ``spread = median / wall`` how
    much the rounds varied.
    """

    cpu: float
    wall: float
    median: float
    rounds: int

    @property
    def busy(self) -> float:
        return self.wall / self.cpu

    @property
    def spread(self) -> float:
        return self.median / self.wall


def time_modules(
    modules: Mapping[str, Callable[..., Any]],
    *inputs: Any,
    rounds: int = 7,
    warmup: int = 2,
    threads: Optional[int] = 1,
) -> Dict[str, Timing]:
    """Time each callable of ``modules`` on ``inputs`` robustly against a busy
    machine.

    Every call is warmed up ``warmup`` times (allocations, kernel selection); then
    ``rounds`` interleaved rounds each time every module once, so a busy spell slows
    all of them alike instead of one. Each module's times are its minimum over the
    rounds. On one thread (the default) the thread's CPU time is the robust
    measure: a machine busy with other work deschedules the thread, which stretches
    the wall clock (by 50× on a shared CI machine) but not the CPU time; only cache
    and memory contention still slow it. With several threads the CPU time of the
    calling thread misses the others' work: read ``wall`` then. Runs under
    ``torch.no_grad()`` on ``threads`` threads (``None`` keeps the current number)
    and restores the thread count afterwards.
    """
    if not isinstance(rounds, int) or rounds < 1:
        raise ValueError(
            f"time_modules rounds: expected an int >= 1, got {rounds!r}"
        )
    if not isinstance(warmup, int) or warmup < 0:
        raise ValueError(
            f"time_modules warmup: expected an int >= 0, got {warmup!r}"
        )
    if not modules:
        raise ValueError("time_modules: expected at least one module, got none")
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    cpu: Dict[str, List[float]] = {name: [] for name in modules}
    wall: Dict[str, List[float]] = {name: [] for name in modules}
    try:
        with torch.no_grad():
            for module in modules.values():
                for _ in range(warmup):
                    module(*inputs)
            for _ in range(rounds):
                for name, module in modules.items():
                    start, start_cpu = time.perf_counter(), time.thread_time()
                    module(*inputs)
                    cpu[name].append(time.thread_time() - start_cpu)
                    wall[name].append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(previous)
    return {
        name: Timing(
            min(cpu[name]), min(wall[name]), statistics.median(wall[name]), rounds
        )
        for name in modules
    }
