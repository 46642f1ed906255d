"""Checks for the DeepLabV3+ part: atrous convolution, separable convolution and its cost, ASPP's
image-level branch, and the DeepLabV3+ decoder.

Each check compares the student's object with ``tutorial_lib``'s own component on seeded inputs
(odd, non-square sizes, several rates and kernel sizes). When the answers on every case match a
known wrong variant (padding without dilation, floats for integer counts, a concatenation in the
wrong order, ...), the hint says what the output reveals and which section of the chapter shows
the idea — never the code of the answer.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.aspp import ImagePooling
from ..layers.atrous import receptive_field
from ..layers.separable import (
    depthwise_conv_macs,
    pointwise_conv_macs,
    standard_conv_macs,
)
from ..models.deeplab import Decoder
from ..profiling import time_modules
from . import _core
from ._core import Checker, diagnose, register, same_tensor

__all__ = [
    "check_atrous_conv2d",
    "check_receptive_field",
    "check_separable_macs",
    "check_separable_conv",
    "check_image_pooling",
    "check_deeplab_decoder",
    "measure_receptive_field",
    "check_predict_receptive_field",
    "measure_separable_costs",
    "check_predict_separable_speed",
    "measure_aspp_taps",
    "check_predict_aspp_taps",
    "measure_decoder_shapes",
    "check_predict_decoder_shapes",
]


def _gen(seed: int = 0) -> torch.Generator:
    return _core.generator(seed)


# -- Chapter 02 ---------------------------------------------------------------------------------

_CH02 = "chapter 02"
_ATROUS_CASES = [
    (3, 1, 1),
    (3, 2, 2),
    (3, 4, 0),
    (5, 2, 4),
    (3, 6, 6),
    (1, 3, 0),
    (7, 1, 3),
    (3, 3, 1),
]

_ATROUS_MISTAKES = [
    (
        lambda case: F.conv2d(case[0], case[1], padding=case[4]),
        "an ordinary convolution: neighbouring taps read adjacent pixels, not pixels `rate` apart",
        f"tap (i, j) must read the input `rate` pixels further per step — see the figure of sampled offsets "
        f"in {_CH02}, section 'Build it'",
    ),
    (
        lambda case: F.conv2d(case[0], case[1], padding=case[4], stride=case[3]),
        "a strided convolution: the output shrinks by `rate` instead of the taps spreading out",
        f"a rate spreads the kernel's taps, it does not skip output positions — compare the two in {_CH02}, "
        f"section 'Output stride: rates replace strides'",
    ),
    (
        lambda case: F.conv2d(case[0], case[1], dilation=case[3]),
        "a dilated convolution without the requested padding (the output is too small by 2·padding)",
        f"pad the input by `padding` on every side before reading the taps — {_CH02}, section 'Sizes: "
        f"effective kernel, padding, receptive field'",
    ),
    (
        lambda case: F.conv2d(
            case[0], case[1], padding=case[4] * case[3], dilation=case[3]
        ),
        "padding·rate zeros on each side instead of `padding`",
        "`padding` is already in pixels: the caller chose it for the dilated kernel",
    ),
    (
        lambda case: F.conv2d(
            case[0], case[1].transpose(-1, -2), padding=case[4], dilation=case[3]
        ),
        "a transposed kernel: rows of the kernel read columns of the input",
        "tap (i, j) is row offset i·rate and column offset j·rate: weight[..., i, j] goes with x[..., i·rate + y, "
        "j·rate + x]",
    ),
]


@register(
    "atrous_conv2d",
    forbid=[
        "tutorial_lib.layers.atrous.atrous_conv2d",
        "tutorial_lib.layers.atrous.AtrousConv2d",
    ],
    names=["atrous_conv2d"],
    description="atrous_conv2d(x, weight, rate=1, padding=0) -> (B, C_out, H_out, W_out)",
)
def check_atrous_conv2d(fn: Callable[..., torch.Tensor]) -> None:
    """Check ``atrous_conv2d(x, weight, rate=1, padding=0)`` against ``F.conv2d(..., dilation=rate)``.

    Eight cases on a non-square (13, 18) input: rates 1–6, kernels 1, 3, 5, 7, padding from 0 to 6.
    The feedback names the mistake when every answer matches one (no dilation, a stride instead of a
    rate, padding ignored or multiplied by the rate, a transposed kernel).
    """
    gen = _gen(1)
    with Checker("atrous convolution") as c:
        answers = []
        for k, rate, padding in _ATROUS_CASES:
            x = torch.randn(2, 3, 13, 18, generator=gen)
            w = torch.randn(4, 3, k, k, generator=gen)
            case = (x, w, k, rate, padding)
            try:
                got = fn(x.clone(), w.clone(), rate=rate, padding=padding)
            except Exception as err:  # noqa: BLE001 - reported per case
                if c.stub(err, "atrous_conv2d"):
                    return
                got = err
            answers.append((case, got))
        ok = [
            same_tensor(
                got, F.conv2d(case[0], case[1], padding=case[4], dilation=case[3])
            )
            for case, got in answers
        ]
        found = (
            diagnose(
                [a for a in answers if isinstance(a[1], torch.Tensor)],
                _ATROUS_MISTAKES,
                same_tensor,
            )
            if not all(ok)
            else None
        )
        for (case, got), good in zip(answers, ok):
            x, w, k, rate, padding = case
            what = (
                f"kernel {k}×{k}, rate {rate}, padding {padding} on a 13×18 input"
            )
            want = F.conv2d(x, w, padding=padding, dilation=rate)
            if isinstance(got, BaseException):
                c.true(False, f"{what}: {_core.student_raised(got)}")
                continue
            if found:
                hint = f"your output looks like {found[0]}; {found[1]}"
            elif isinstance(got, torch.Tensor) and got.shape != want.shape:
                hint = (
                    f"an output of {tuple(got.shape[-2:])} instead of {tuple(want.shape[-2:])} means the "
                    f"taps span the wrong width: a k×k kernel at rate r spans k + (k−1)(r−1) pixels "
                    f"({_CH02}, section 'Sizes: effective kernel, padding, receptive field')"
                )
            else:
                hint = (
                    f"the size is right but the values are not: check which input pixel each tap reads "
                    f"({_CH02}, section 'Build it')"
                )
            c.close(got, want, what, hint=hint, atol=1e-4)


def _rf_ignore_strides(layers):
    return 1 + sum(k + (k - 1) * (r - 1) - 1 for k, s, r in layers)


def _rf_jump_first(layers):
    field, jump = 1, 1
    for k, s, r in layers:
        jump *= s
        field += (k + (k - 1) * (r - 1) - 1) * jump
    return field


def _rf_ignore_rate(layers):
    return receptive_field([(k, s, 1) for k, s, r in layers])


def _rf_rate_times_k(layers):
    field, jump = 1, 1
    for k, s, r in layers:
        field += (k * r - 1) * jump
        jump *= s
    return field


_RF_MISTAKES = [
    (
        _rf_ignore_strides,
        "adding each layer's span in input pixels, as if no layer had a stride",
        f"after a stride-s layer one step of the next layer covers s input pixels — see the stacked "
        f"example in {_CH02}, section 'Sizes: effective kernel, padding, receptive field'",
    ),
    (
        _rf_jump_first,
        "counting a layer's own stride in its step (the steps grow one layer too early)",
        "a layer's stride spaces the *next* layers' taps, not its own",
    ),
    (
        _rf_ignore_rate,
        "ignoring the rates (every kernel counted as undilated)",
        f"a k×k kernel at rate r spans k + (k−1)(r−1) pixels ({_CH02}, 'Sizes')",
    ),
    (
        _rf_rate_times_k,
        "a kernel spanning k·r pixels at rate r",
        "k taps r apart span (k−1)·r + 1 pixels, not k·r",
    ),
]


#: what each stack tests (strides, rates, both, a 1×1 layer); the seed draws its kernels,
#: strides and rates, a 1 staying a 1
_RF_TEMPLATES = [
    [(3, 1, 1)],
    [(3, 1, 1)] * 3,
    [(3, 1, 2)] * 3,
    [(3, 2, 1), (3, 1, 1), (3, 1, 1)],
    [(7, 2, 1), (3, 2, 1), (3, 1, 2)],
    [(3, 2, 1), (3, 2, 1), (3, 1, 2), (3, 1, 4)],
    [(1, 2, 1), (3, 1, 1)],
    [(5, 1, 3), (3, 1, 1)],
    [(3, 1, 2), (3, 2, 1), (3, 3, 1), (3, 1, 1)],
]


def _rf_stacks(gen: torch.Generator) -> List[List[Tuple[int, int, int]]]:
    """Ten stacks with ten different answers (no constant passes two), the last one empty."""

    def pick(value: int, options: Tuple[int, ...]) -> int:
        return (
            value
            if value == 1
            else options[int(torch.randint(len(options), (), generator=gen))]
        )

    for _ in range(100):
        stacks = [
            [
                (pick(k, (3, 5, 7, 9)), pick(s, (2, 3, 4)), pick(r, (2, 3, 4, 6)))
                for k, s, r in t
            ]
            for t in _RF_TEMPLATES
        ] + [[]]
        if len({receptive_field(layers) for layers in stacks}) == len(stacks):
            return stacks
    raise RuntimeError("receptive_field check: no draw with distinct answers")


@register(
    "receptive_field",
    forbid=["tutorial_lib.layers.atrous.receptive_field"],
    names=["receptive_field"],
    description="receptive_field(layers: list of (kernel_size, stride, rate)) -> int",
)
def check_receptive_field(fn: Callable[[List[tuple]], int]) -> None:
    """Check ``receptive_field(layers)`` (pixels along one axis, an exact int) on stacks with strides and rates."""
    stacks = _rf_stacks(_gen(13))
    with Checker("receptive field") as c:
        answers = []
        for layers in stacks:
            try:
                answers.append((list(layers), fn(list(layers))))
            except Exception as err:  # noqa: BLE001
                if c.stub(err, "receptive_field"):
                    return
                answers.append((list(layers), err))
        wrong = any(
            not (_core.exact_int(got) and int(got) == receptive_field(l))
            for l, got in answers
        )
        found = (
            diagnose(
                [a for a in answers if not isinstance(a[1], BaseException)],
                _RF_MISTAKES,
                lambda got, v: _core.exact_int(got) and int(got) == v,
            )
            if wrong
            else None
        )
        hint = (
            f"your function behaves like {found[0]}; {found[1]}"
            if found
            else f"follow one output pixel back through the stack, layer by layer, and count the input pixels "
            f"it touches ({_CH02}, section 'Sizes: effective kernel, padding, receptive field')"
        )
        for layers, got in answers:
            want = receptive_field(layers)
            what = f"layers {layers}" if layers else "an empty stack (the identity)"
            if isinstance(got, BaseException):
                c.true(False, f"{what}: {_core.student_raised(got)}")
            elif not _core.exact_int(got):
                c.true(
                    False,
                    f"{what}: expected the int {want}, got {got!r} ({type(got).__name__})",
                    "a receptive field is a whole number of pixels: return an int, computed without division",
                )
            else:
                c.equal(int(got), want, what, hint)


def measure_receptive_field(
    layers: List[Tuple[int, int, int]], size: int = 97
) -> int:
    """The receptive field of a stack of single-channel convolutions, *measured*: the width (pixels) of
    the input region whose gradient reaches the centre output pixel (all weights one, no bias)."""
    convs = []
    for k, s, r in layers:
        conv = nn.Conv2d(1, 1, k, stride=s, dilation=r, bias=False)
        nn.init.ones_(conv.weight)
        convs.append(conv)
    x = torch.ones(1, 1, size, size, requires_grad=True)
    y = nn.Sequential(*convs)(x)
    y[0, 0, y.shape[-2] // 2, y.shape[-1] // 2].backward()
    cols = (x.grad[0, 0].abs().sum(0) > 0).nonzero().flatten()
    return int(cols.max() - cols.min() + 1)


#: the stack of the chapter-02 prediction exercise: a stride, then rates that grow
PREDICT_RF_STACK = [(3, 2, 1), (3, 1, 2), (3, 1, 4)]


def check_predict_receptive_field(prediction: Any, measured: Any) -> None:
    """Predict-then-measure (chapter 02): the receptive field of ``PREDICT_RF_STACK``.

    ``prediction`` is the student's int, written before running ``measure_receptive_field``;
    ``measured`` is that measurement. The prediction must equal both the measurement and the rule
    of the chapter (a stride-2 layer doubles the step of every later layer).
    """
    want = receptive_field(PREDICT_RF_STACK)
    with Checker("prediction: receptive field of a strided, dilated stack") as c:
        if _core.unanswered(prediction):
            c.true(
                False,
                "not implemented yet: write your prediction (an int) before running the measurement",
            )
            return
        c.true(
            _core.exact_int(measured) and int(measured) == want,
            f"the measurement gave {measured!r}; rerun the measurement cell unchanged",
            credit=False,
        )
        if _core.exact_int(prediction) and int(prediction) == want:
            c.true(True, "")
            return
        if _core.exact_int(prediction) and int(prediction) == _rf_ignore_strides(
            PREDICT_RF_STACK
        ):
            why = (
                "your prediction adds the spans as if the first layer had no stride: after it, each tap of "
                "the later layers is 2 input pixels apart"
            )
        elif _core.exact_int(prediction) and int(prediction) == _rf_ignore_rate(
            PREDICT_RF_STACK
        ):
            why = "your prediction ignores the rates: a 3×3 kernel at rate r spans 2r + 1 pixels"
        else:
            why = f"follow the centre pixel back one layer at a time ({_CH02}, section 'Sizes')"
        c.true(
            False,
            f"you predicted {prediction!r}, the gradient reaches {measured} pixels. Hint: {why}",
        )


# -- Chapter 03 ---------------------------------------------------------------------------------

_CH03 = "chapter 03"


def _macs_cases(gen: torch.Generator) -> List[Tuple[int, int, int, int]]:
    """Seven layers (M, N, K, G) with seven different answers, drawn from ``gen`` but one:
    (3, 7, 7, 9), on which the cost ratio times the standard count is not a whole number."""

    def pick(low: int, high: int) -> int:
        return int(torch.randint(low, high + 1, (), generator=gen))

    for _ in range(100):
        cases = [
            (3, 7, 7, 9),
            # a real layer's size; the ratio formula happens to give a whole float here
            (pick(512, 1024), 2 ** pick(9, 10), 1, pick(17, 65)),
            *[
                (pick(1, 96), pick(1, 96), 2 * pick(0, 3) + 1, pick(2, 40))
                for _ in range(5)
            ],
        ]
        if len({_macs(*case) for case in cases}) == len(cases):
            return cases
    raise RuntimeError("separable_macs check: no draw with distinct answers")


def _macs(m, n, k, g):
    return standard_conv_macs(m, n, k, g), depthwise_conv_macs(
        m, k, g
    ) + pointwise_conv_macs(m, n, g)


_MACS_MISTAKES = [
    (
        lambda c: (
            c[1] * c[3] ** 2 * c[2] ** 2 * c[0],
            c[3] ** 2 * c[2] ** 2 * c[0],
        ),
        "leaving out the pointwise 1×1 convolution (your 'separable' is only the depthwise part)",
        f"the separable layer is two convolutions; see the two terms in {_CH03}, section 'Cost: the formula "
        f"and a count of real layers'",
    ),
    (
        lambda c: (
            c[1] * c[3] ** 2 * c[2] ** 2 * c[0],
            c[3] ** 2 * c[2] * c[0] + c[1] * c[3] ** 2 * c[0],
        ),
        "a depthwise cost with K instead of K² taps per output",
        "a K×K filter has K² taps at every output position",
    ),
    (
        lambda c: (
            c[1] * c[3] * c[2] ** 2 * c[0],
            c[3] * c[2] ** 2 * c[0] + c[1] * c[3] * c[0],
        ),
        "counting G output positions instead of G² (a size × size map)",
        "the output map has size × size positions",
    ),
    (
        lambda c: (
            c[1] * c[3] ** 2 * c[2] ** 2 * c[0],
            c[3] ** 2 * c[2] ** 2 * c[1] + c[1] * c[3] ** 2 * c[0],
        ),
        "a depthwise convolution over the output channels N instead of the input channels M",
        "the depthwise filter runs once per *input* channel, before the 1×1 convolution changes the width",
    ),
]


@register(
    "separable_macs",
    forbid=[
        "tutorial_lib.layers.separable.standard_conv_macs",
        "tutorial_lib.layers.separable.depthwise_conv_macs",
        "tutorial_lib.layers.separable.pointwise_conv_macs",
        "tutorial_lib.layers.separable.separable_cost_ratio",
    ],
    names=["separable_macs"],
    description="separable_macs(in_chans, out_chans, kernel_size, size) -> (standard, separable)",
)
def check_separable_macs(fn: Callable[[int, int, int, int], Any]) -> None:
    """Check ``separable_macs(M, N, K, G) -> (standard, separable)``: exact ``int`` MAC counts.

    Seven layers drawn from the seed but one, (3, 7, 7, 9), on which a formula written with
    divisions (the cost ratio ``1/N + 1/K²`` times the standard count) loses exactness: a float
    answer fails even when it happens to be whole-valued, because the exercise asks for exact
    integers.
    """
    with Checker("separable convolution cost") as c:
        answers = []
        for case in _macs_cases(_gen(14)):
            try:
                answers.append((case, fn(*case)))
            except Exception as err:  # noqa: BLE001
                if c.stub(err, "separable_macs"):
                    return
                answers.append((case, err))

        def as_pair(got: Any) -> Optional[Tuple[int, int]]:
            if (
                isinstance(got, (tuple, list))
                and len(got) == 2
                and all(_core.exact_int(v) for v in got)
            ):
                return int(got[0]), int(got[1])
            return None

        wrong = any(as_pair(got) != _macs(*case) for case, got in answers)
        found = (
            diagnose(
                [a for a in answers if as_pair(a[1]) is not None],
                _MACS_MISTAKES,
                lambda got, v: as_pair(got) == v,
            )
            if wrong
            else None
        )
        for case, got in answers:
            want = _macs(*case)
            what = "M={}, N={}, K={}, G={}".format(*case)
            if isinstance(got, BaseException):
                c.true(False, f"{what}: {_core.student_raised(got)}")
                continue
            if not (isinstance(got, (tuple, list)) and len(got) == 2):
                c.true(
                    False,
                    f"{what}: expected a tuple (standard, separable), got {got!r}",
                )
                continue
            if as_pair(got) is None:
                exact = all(not isinstance(v, float) or v.is_integer() for v in got)
                c.true(
                    False,
                    f"{what}: expected the ints {want}, got {tuple(got)!r} "
                    f"({', '.join(type(v).__name__ for v in got)})",
                    (
                        "a float result, even a whole-valued one, is not an exact count: "
                        if exact
                        else "a float that is not whole reveals a division: "
                    )
                    + "a MAC count is a product of integers; build it from multiplications only "
                    f"(the ratio 1/N + 1/K² of {_CH03} compares costs, it does not count them)",
                )
                continue
            hint = (
                f"your counts behave like {found[0]}; {found[1]}"
                if found
                else f"count one multiply-accumulate per tap, per output position, per channel pair "
                f"({_CH03}, section 'Cost')"
            )
            c.equal(as_pair(got), want, what, hint)


#: the layer of the chapter-03 prediction exercise (M → N at G × G, 3×3)
PREDICT_SEPARABLE_LAYER = dict(in_chans=64, out_chans=64, kernel_size=3, size=56)


def measure_separable_costs(
    in_chans: int = 64,
    out_chans: int = 64,
    kernel_size: int = 3,
    size: int = 56,
    rounds: int = 7,
    batch: int = 4,
) -> dict:
    """MACs, bytes moved (float32 inputs + weights + outputs, once each) and the time
    of the three layers of a separable convolution's comparison: ``standard``,
    ``depthwise``, ``pointwise``.

    Timed as chapter 03 times them, with :func:`~tutorial_lib.profiling.time_modules`:
    on one thread, after a warm-up, ``rounds`` interleaved rounds (a busy spell slows
    every layer alike), each layer's time the CPU time of its fastest round (a busy
    machine stretches the wall clock, not the CPU time).

    Returns ``{layer: {"macs", "bytes", "intensity" (MACs per byte), "seconds" (CPU),
    "wall", "gmacs_per_s"}}``. Times depend on the machine: the check compares only
    their order, with slack.
    """
    m, n, k, g = in_chans, out_chans, kernel_size, size
    pad = k // 2
    layers = {
        "standard": nn.Conv2d(m, n, k, padding=pad, bias=False),
        "depthwise": nn.Conv2d(m, m, k, padding=pad, groups=m, bias=False),
        "pointwise": nn.Conv2d(m, n, 1, bias=False),
    }
    x = torch.randn(batch, m, g, g)
    timings = time_modules(layers, x, rounds=rounds, threads=1)
    counts = {
        "standard": standard_conv_macs(m, n, k, g),
        "depthwise": depthwise_conv_macs(m, k, g),
        "pointwise": pointwise_conv_macs(m, n, g),
    }
    result = {}
    for name, layer in layers.items():
        macs = batch * counts[name]
        out_c = m if name == "depthwise" else n
        moved = 4 * (x.numel() + layer.weight.numel() + batch * out_c * g * g)
        seconds = timings[name].cpu
        result[name] = dict(
            macs=macs,
            bytes=moved,
            intensity=macs / moved,
            seconds=seconds,
            wall=timings[name].wall,
            gmacs_per_s=macs / seconds / 1e9,
        )
    return result


def check_predict_separable_speed(prediction: Any, measured: Any) -> None:
    """Predict-then-measure (chapter 03): MACs per byte, then the timing table.

    ``prediction`` is a dict the student fills *before* measuring:

    * ``"lowest_intensity"``: the layer (``"standard"``, ``"depthwise"`` or ``"pointwise"``) that does the
      fewest MACs per byte moved;
    * ``"slowest_per_mac"``: the layer with the lowest GMAC/s;
    * ``"time_ratio"``: separable (depthwise + pointwise) time over standard time — higher, equal or
      lower than the MAC ratio? (``"higher"``, ``"equal"`` or ``"lower"``).

    The intensities are exact; the reasoning expected is that the depthwise layer moves as many bytes as
    the others for K²·M MACs per position instead of K²·M·N, so its attainable GMAC/s is capped low
    (and CPU depthwise kernels often run below even that cap): slowest per MAC, and on this layer
    the separable layer's time ratio exceeds its MAC ratio. Times are compared by order only, with
    slack; a noisy timing is reported, not held against the prediction.
    """
    layers = ("standard", "depthwise", "pointwise")
    with Checker("prediction: MACs per byte and time per MAC") as c:
        if not isinstance(prediction, dict) or any(
            _core.unanswered(prediction.get(k))
            for k in ("lowest_intensity", "slowest_per_mac", "time_ratio")
        ):
            c.true(
                False,
                "not implemented yet: fill in the three predictions (replace each ...) before measuring",
            )
            return
        if not (isinstance(measured, dict) and set(layers) <= set(measured)):
            c.true(
                False,
                "expected the dict returned by checks.measure_separable_costs(); rerun that cell",
                credit=False,
            )
            return
        intensity = {k: measured[k]["intensity"] for k in layers}
        lowest = min(intensity, key=intensity.get)
        got = _core.as_choice(prediction["lowest_intensity"])
        c.true(
            got == lowest,
            f"lowest MACs per byte: you predicted {prediction['lowest_intensity']!r}, the count gives "
            f"{lowest!r} ({', '.join(f'{k} {v:.1f}' for k, v in intensity.items())} MACs/byte)",
            "compare, per output position, the MACs (K²·M·N, K²·M, M·N) with the bytes read and written "
            "(about the same for all three): which layer does little arithmetic per byte?",
        )
        speed = {k: measured[k]["gmacs_per_s"] for k in layers}
        slowest = min(speed, key=speed.get)
        pred_slow = _core.as_choice(prediction["slowest_per_mac"])
        c.true(
            pred_slow == "depthwise",
            f"slowest per MAC: you predicted {prediction['slowest_per_mac']!r}; the reasoning expected is "
            f"'depthwise'",
            "a layer that does few MACs per byte can reach only a low GMAC/s, and depthwise "
            "kernels often run below even that cap: its GMAC/s is the lowest. "
            f"See {_CH03}, section 'Fewer MACs is not proportionally less time'",
        )
        sep_t = measured["depthwise"]["seconds"] + measured["pointwise"]["seconds"]
        sep_m = measured["depthwise"]["macs"] + measured["pointwise"]["macs"]
        time_ratio = sep_t / measured["standard"]["seconds"]
        mac_ratio = sep_m / measured["standard"]["macs"]
        c.true(
            _core.as_choice(prediction["time_ratio"]) == "higher",
            f"time ratio versus MAC ratio: you predicted {prediction['time_ratio']!r}; the reasoning expected "
            f"is 'higher' (measured here: time ratio {time_ratio:.2f}, MAC ratio {mac_ratio:.3f})",
            "on this layer the separable layer spends a large share of its time in its "
            "slowest-per-MAC part, the depthwise convolution",
        )
        # The measurement against the reasoning, with slack (never absolute times): informative only.
        agrees = slowest == "depthwise" and time_ratio > mac_ratio
        print(
            f"measured: GMAC/s standard {speed['standard']:.1f}, depthwise {speed['depthwise']:.1f}, "
            f"pointwise {speed['pointwise']:.1f}; time ratio {time_ratio:.2f} vs MAC ratio {mac_ratio:.3f}"
            + (
                ""
                if agrees
                else " — this run does not show the expected order (a busy machine?); "
                "rerun the measurement"
            )
        )


# -- Chapter 03, Exercise 2 ---------------------------------------------------------------------


def _separable_weights(module: nn.Module, m: int, n: int, k: int):
    depthwise = [p for p in module.parameters() if tuple(p.shape) == (m, 1, k, k)]
    pointwise = [p for p in module.parameters() if tuple(p.shape) == (n, m, 1, 1)]
    return (depthwise[0] if depthwise else None), (
        pointwise[0] if pointwise else None
    )


@register(
    "separable_conv",
    forbid=["tutorial_lib.layers.separable.SeparableConv2d"],
    names=["SeparableConv"],
    description="SeparableConv(in_chans, out_chans, kernel_size=3, rate=1): depthwise then pointwise, no bias",
)
def check_separable_conv(cls: Callable[..., nn.Module]) -> None:
    """Check a ``SeparableConv(in_chans, out_chans, kernel_size=3, rate=1)`` module (no bias, no norm).

    Four settings (rates 1–3, kernels 3 and 5, M ≠ N) on a non-square input; the hints tell apart a
    padding that ignores the rate, a missing dilation, biases and a first convolution that mixes channels.
    """
    gen = _gen(2)
    with Checker("depthwise separable convolution") as c:
        for m, n, k, rate in [
            (6, 10, 3, 1),
            (8, 4, 3, 2),
            (5, 7, 5, 3),
            (4, 6, 3, 3),
        ]:
            try:
                layer = cls(m, n, kernel_size=k, rate=rate)
            except Exception as err:  # noqa: BLE001
                if c.stub(err, "SeparableConv"):
                    return
                c.true(
                    False,
                    f"SeparableConv({m}, {n}, {k}, rate={rate}): {_core.student_raised(err)}",
                )
                continue
            params = sum(p.numel() for p in layer.parameters())
            want_params = m * k * k + m * n
            if (
                params == want_params + m + n
                or params == want_params + n
                or params == want_params + m
            ):
                why = "the extra parameters are biases: the exercise's convolutions have none"
            elif params == m * m * k * k + m * n:
                why = (
                    f"M·M·K² weights in the first convolution: it mixes channels — a depthwise convolution "
                    f"has one K×K filter per channel ({_CH03}, section 'Build it')"
                )
            else:
                why = f"count the weights of a depthwise K×K and a 1×1 convolution ({_CH03}, 'Cost')"
            c.equal(
                params,
                want_params,
                f"parameters of SeparableConv({m}, {n}, {k})",
                hint=why,
            )
            dw, pw = _separable_weights(layer, m, n, k)
            if not c.true(
                dw is not None and pw is not None,
                f"SeparableConv({m}, {n}, {k}): expected weights of shapes ({m}, 1, {k}, {k}) and "
                f"({n}, {m}, 1, 1)",
            ):
                continue
            x = torch.randn(2, m, 11, 14, generator=gen)
            want = F.conv2d(
                F.conv2d(
                    x, dw, padding=rate * (k - 1) // 2, dilation=rate, groups=m
                ),
                pw,
            ).detach()
            try:
                got = layer(x)
            except Exception as err:  # noqa: BLE001
                c.true(
                    False,
                    f"SeparableConv({m}, {n}, {k}, rate={rate}) forward: {_core.student_raised(err)}",
                )
                continue
            what = f"SeparableConv({m}, {n}, {k}, rate={rate}) output on an 11×14 input"
            hint = "compare the order of the two convolutions and their arguments with the chapter's 'Build it'"
            if (
                isinstance(got, torch.Tensor)
                and got.dim() == 4
                and got.shape[-2:] != x.shape[-2:]
            ):
                h = got.shape[-2]
                if h == 11 - (rate - 1) * (k - 1):
                    hint = (
                        "the output is smaller than the input by (rate−1)(k−1): the padding was chosen for "
                        "an undilated kernel. A dilated kernel spans k + (k−1)(rate−1) pixels "
                        "(chapter 02, section 'Sizes')"
                    )
                elif h == 11 + (rate - 1) * (k - 1):
                    hint = (
                        "the output is larger than the input: the padding is sized for a dilated kernel, "
                        "but the kernel itself is not dilated"
                    )
                else:
                    hint = "the output must keep the input's spatial size"
            elif (
                isinstance(got, torch.Tensor)
                and got.shape == want.shape
                and rate > 1
            ):
                undilated = F.conv2d(
                    F.conv2d(x, dw, padding=rate * (k - 1) // 2, groups=m), pw
                )
                if undilated.shape == want.shape and same_tensor(
                    got, undilated.detach()
                ):
                    hint = "the values are those of an undilated kernel: the rate must space the depthwise taps"
            c.close(got, want, what, hint=hint)


# -- Chapter 04 ---------------------------------------------------------------------------------

_CH04 = "chapter 04"


def _pool_variant(
    student_conv: nn.Conv2d, ref: ImagePooling, x: torch.Tensor, mistake: str
) -> torch.Tensor:
    pooled = (
        F.adaptive_max_pool2d(x, 1)
        if mistake == "max"
        else x.mean((2, 3), keepdim=True)
    )
    y = ref.norm(ref.conv(pooled))
    if mistake != "no_relu":
        y = F.relu(y)
    if mistake == "no_upsample":
        return y
    return y.expand(-1, -1, *x.shape[-2:])


@register(
    "image_pooling",
    forbid=["tutorial_lib.layers.aspp.ImagePooling"],
    names=["ImagePooling"],
    description="ImagePooling(in_chans, out_chans): pool, 1×1 conv + BN + ReLU, upsample to (H, W)",
)
def check_image_pooling(cls: Callable[..., nn.Module]) -> None:
    """Check an ASPP image-level branch ``ImagePooling(in_chans, out_chans)`` against the library's.

    Four inputs, among them a 1×1 map and non-square ones; the hints tell apart max pooling, a missing
    ReLU, a conv with bias and an output left at 1×1.
    """
    gen = _gen(3)
    with Checker("ASPP image-level features") as c:
        for cin, cout, h, w in [
            (8, 4, 9, 13),
            (16, 6, 1, 1),
            (5, 3, 33, 17),
            (6, 5, 4, 7),
        ]:
            try:
                student = cls(cin, cout)
            except Exception as err:  # noqa: BLE001
                if c.stub(err, "ImagePooling"):
                    return
                c.true(
                    False,
                    f"ImagePooling({cin}, {cout}): {_core.student_raised(err)}",
                )
                continue
            ref = ImagePooling(cin, cout)
            convs = [mod for mod in student.modules() if isinstance(mod, nn.Conv2d)]
            norms = [
                mod for mod in student.modules() if isinstance(mod, nn.BatchNorm2d)
            ]
            if not c.true(
                len(convs) == 1 and len(norms) == 1,
                f"ImagePooling({cin}, {cout}): expected one nn.Conv2d and one nn.BatchNorm2d, "
                f"found {len(convs)} and {len(norms)}",
            ):
                continue
            n_params = sum(p.numel() for p in student.parameters())
            c.equal(
                n_params,
                cin * cout + 2 * cout,
                f"parameters of ImagePooling({cin}, {cout})",
                hint=(
                    "the extra out_chans parameters are the convolution's bias: BN right after it makes "
                    "a bias redundant"
                    if n_params == cin * cout + 3 * cout
                    else "one 1×1 convolution from in_chans to out_chans, then BN"
                ),
            )
            with torch.no_grad():
                ref.conv.weight.copy_(convs[0].weight)
                ref.norm.weight.copy_(torch.rand(cout, generator=gen) + 0.5)
                ref.norm.bias.copy_(torch.randn(cout, generator=gen))
                norms[0].weight.copy_(ref.norm.weight)
                norms[0].bias.copy_(ref.norm.bias)
                if convs[0].bias is not None:
                    convs[0].bias.zero_()
            x = torch.randn(2, cin, h, w, generator=gen) + 0.3 * torch.randn(
                2, cin, 1, 1, generator=gen
            )
            try:
                with torch.no_grad():
                    got = student.eval()(x)
            except Exception as err:  # noqa: BLE001
                c.true(
                    False,
                    f"forward of a (2, {cin}, {h}, {w}) input: {_core.student_raised(err)}",
                )
                continue
            ref.eval()
            hint = (
                f"compare with the branch as drawn in {_CH04}, section 'Build it'"
            )
            with torch.no_grad():
                for mistake, says in (
                    (
                        "no_upsample",
                        "the output stays 1×1: the pooled vector must be repeated "
                        "over the H × W positions of the input",
                    ),
                    (
                        "max",
                        "the pooled vector is each channel's maximum: image-level "
                        "features are the *average* over the map",
                    ),
                    (
                        "no_relu",
                        "negative values survive: the branch ends in a ReLU "
                        "like ASPP's other branches",
                    ),
                ):
                    variant = _pool_variant(convs[0], ref, x, mistake)
                    if same_tensor(got, variant, atol=1e-5) and not same_tensor(
                        got, ref(x), atol=1e-5
                    ):
                        hint = says
                        break
            c.close(
                got,
                ref(x).detach(),
                f"output for a (2, {cin}, {h}, {w}) input",
                hint=hint,
            )


def measure_aspp_taps(size: int, rate: int, kernel_size: int = 3) -> int:
    """How many of a k×k atrous kernel's taps land inside a ``size × size`` map for its centre pixel,
    measured by convolving a map of ones with a kernel of ones (zero padding counts nothing)."""
    pad = rate * (kernel_size - 1) // 2
    ones = torch.ones(1, 1, size, size)
    counted = F.conv2d(
        ones, torch.ones(1, 1, kernel_size, kernel_size), padding=pad, dilation=rate
    )
    return int(counted[0, 0, size // 2, size // 2].round())


#: the chapter-04 prediction exercise: ASPP's rates at output stride 16 on a 513-px crop (33×33) and
#: a rate-2 kernel on the 4×4 map of a 64-px image at output stride 16 (not centred: 4 taps)
PREDICT_ASPP_CASES = [(33, 6), (33, 18), (4, 2)]


def _taps_by_rule(size: int, rate: int, k: int = 3) -> int:
    c = size // 2
    inside = sum(1 for i in range(k) if 0 <= c + (i - k // 2) * rate < size)
    return inside * inside


def check_predict_aspp_taps(prediction: Any, measured: Any) -> None:
    """Predict-then-measure (chapter 04): how many of a 3×3 kernel's 9 taps stay inside the map, for the
    centre pixel, for each ``(size, rate)`` of ``PREDICT_ASPP_CASES``.

    ``prediction`` is a list of three ints (one per case); ``measured`` is the list of
    ``measure_aspp_taps(size, rate)``. The expected reasoning: a tap is useful when it lands inside the
    map, so a rate larger than half the map leaves only the centre tap — a 1×1 filter.
    """
    want = [_taps_by_rule(s, r) for s, r in PREDICT_ASPP_CASES]
    with Checker("prediction: useful taps of atrous kernels") as c:
        if _core.unanswered(prediction) or (
            isinstance(prediction, (list, tuple))
            and any(_core.unanswered(p) for p in prediction)
        ):
            c.true(
                False,
                "not implemented yet: write your three predictions (ints) before measuring",
            )
            return
        c.true(
            list(measured) == want,
            f"the measurement gave {measured!r}; rerun the measurement cell unchanged",
            credit=False,
        )
        if not (
            isinstance(prediction, (list, tuple)) and len(prediction) == len(want)
        ):
            c.true(
                False, f"expected a list of {len(want)} ints, got {prediction!r}"
            )
            return
        for (size, rate), p, m in zip(PREDICT_ASPP_CASES, prediction, want):
            hint = (
                "a tap counts only when it lands inside the map: for the centre pixel that is offset "
                f"±rate within ±{size // 2}"
                if m in (1, 9)
                else "count rows and columns separately"
            )
            if _core.exact_int(p) and int(p) == 9 and m == 1:
                hint = (
                    f"at rate {rate} on a {size}×{size} map the outer taps read only padding: the kernel "
                    f"degenerates to its centre tap ({_CH04}, section 'Why image-level features')"
                )
            c.true(
                _core.exact_int(p) and int(p) == m,
                f"{size}×{size} map, rate {rate}: you predicted {p!r}, measured {m}",
                hint,
            )


# -- Chapter 05 ---------------------------------------------------------------------------------

_CH05 = "chapter 05"

_DECODER_MISTAKES = [
    (
        dict(order="low_first"),
        "the concatenation order looks like [projected low-level, x]",
        "the decoder concatenates the upsampled encoder output first, then the projected low-level "
        f"feature — the order fixes which weights of fuse see which channels ({_CH05}, section 'The decoder')",
    ),
    (
        dict(align_corners=True),
        "the upsampling looks like align_corners=True",
        f"the encoder output is upsampled with align_corners=False ({_CH05}, section 'The decoder')",
    ),
    (
        dict(proj_relu=False),
        "the projection of the low-level feature skips its ReLU",
        "proj is a 1×1 convolution, BN *and* ReLU, like every conv of the decoder",
    ),
    (
        dict(nearest=True),
        "the upsampling looks like nearest-neighbour",
        "the exercise upsamples bilinearly: neighbouring outputs blend, they do not repeat",
    ),
]


def _decoder_variant(
    ref: Decoder,
    x: torch.Tensor,
    low: torch.Tensor,
    order: str = "x_first",
    align_corners: bool = False,
    proj_relu: bool = True,
    nearest: bool = False,
) -> torch.Tensor:
    conv, bn = ref.proj[0], ref.proj[1]
    p = bn(conv(low))
    p = F.relu(p) if proj_relu else p
    if nearest:
        up = F.interpolate(x, size=low.shape[-2:], mode="nearest")
    else:
        up = F.interpolate(
            x, size=low.shape[-2:], mode="bilinear", align_corners=align_corners
        )
    return ref.fuse(torch.cat([p, up] if order == "low_first" else [up, p], dim=1))


@register(
    "deeplab_decoder",
    forbid=["tutorial_lib.models.deeplab.Decoder"],
    names=["Decoder"],
    description="Decoder(in_chans, low_level_in_chans, low_level_channels=48, channels=256); "
    "forward(x, low_level)",
)
def check_deeplab_decoder(cls: Callable[..., nn.Module]) -> None:
    """Check a DeepLabV3+ ``Decoder``: shapes at odd sizes, parameter count and values vs the library's.

    Values are compared after copying the library decoder's parameters into the student's in
    registration order, so define ``proj`` (1×1 conv + BN) before ``fuse`` (two 3×3 conv + BN). The
    hints recognise a swapped concatenation, ``align_corners=True``, nearest upsampling and a missing ReLU.
    """
    gen = _gen(4)
    with Checker("DeepLabV3+ decoder") as c:
        for cin, clow, c48, ch, enc, low in [
            (32, 24, 8, 16, (5, 9), (17, 33)),
            (64, 16, 12, 32, (3, 3), (9, 9)),
            (16, 8, 4, 8, (9, 4), (33, 13)),
        ]:
            try:
                student = cls(cin, clow, c48, ch)
            except Exception as err:  # noqa: BLE001
                if c.stub(err, "Decoder"):
                    return
                c.true(
                    False,
                    f"Decoder({cin}, {clow}, {c48}, {ch}): {_core.student_raised(err)}",
                )
                continue
            ref = Decoder(cin, clow, c48, ch)
            got_p = [tuple(p.shape) for p in student.parameters()]
            want_p = [tuple(p.shape) for p in ref.parameters()]
            c.equal(
                sum(p.numel() for p in student.parameters()),
                sum(p.numel() for p in ref.parameters()),
                f"parameters of Decoder({cin}, {clow}, {c48}, {ch})",
                hint="count a 1×1 projection + BN and two 3×3 convolutions + BN, the first one seeing "
                f"both inputs' channels; no biases ({_CH05}, section 'The decoder')",
            )
            x = torch.randn(2, cin, *enc, generator=gen)
            low_level = torch.randn(2, clow, *low, generator=gen)
            if got_p == want_p:
                with torch.no_grad():
                    for p, q in zip(student.parameters(), ref.parameters()):
                        p.copy_(q + 0.1 * torch.randn(q.shape, generator=gen))
                        q.copy_(p)
                    for mod in ref.modules():
                        if isinstance(mod, nn.BatchNorm2d):
                            mod.running_mean.normal_(generator=gen)
                    for a, b in zip(student.buffers(), ref.buffers()):
                        if a.shape == b.shape:
                            a.copy_(b)
                try:
                    with torch.no_grad():
                        got = student.eval()(x, low_level)
                except Exception as err:  # noqa: BLE001
                    c.true(False, f"forward: {_core.student_raised(err)}")
                    continue
                with torch.no_grad():
                    want = ref.eval()(x, low_level)
                    hint = f"follow the decoder's steps in {_CH05}, section 'The decoder'"
                    for change, found, fix in _DECODER_MISTAKES:
                        if same_tensor(
                            got, _decoder_variant(ref, x, low_level, **change)
                        ):
                            hint = f"{found}; {fix}"
                            break
                c.close(
                    got,
                    want.detach(),
                    f"output for encoder {enc} and low-level {low} maps",
                    hint=hint,
                    atol=1e-4,
                )
            else:
                try:
                    out = student.eval()(x, low_level)
                except Exception as err:  # noqa: BLE001
                    c.true(False, f"forward: {_core.student_raised(err)}")
                    continue
                c.shape(
                    out,
                    (2, ch, *low),
                    f"output for encoder {enc} and low-level {low}",
                    hint="the decoder works at the low-level feature's size",
                )
                c.true(
                    False,
                    f"parameter shapes in order {got_p} differ from {want_p}",
                    hint="define proj before fuse, each convolution without bias followed by BN",
                )


def measure_decoder_shapes(image: int = 64) -> dict:
    """The shapes inside the library's small DeepLabV3+ decoder for an ``image × image`` input at output
    stride 16 (encoder at 1/16, low-level at 1/4): ``{"encoder", "low_level", "decoder", "logits"}``."""
    dec = Decoder(32, 24, 8, 16).eval()
    x = torch.randn(1, 32, image // 16, image // 16)
    low = torch.randn(1, 24, image // 4, image // 4)
    with torch.no_grad():
        out = dec(x, low)
    return {
        "encoder": tuple(x.shape[-2:]),
        "low_level": tuple(low.shape[-2:]),
        "decoder": tuple(out.shape[-2:]),
        "upsampling_factor_after_decoder": image // out.shape[-1],
    }


def check_predict_decoder_shapes(prediction: Any, measured: Any) -> None:
    """Predict-then-measure (chapter 05): for a 64×64 image at output stride 16, predict the decoder's
    output size ``(h, w)`` and the factor by which the logits must still be upsampled.

    ``prediction = {"decoder": (h, w), "upsampling_factor_after_decoder": int}``.
    """
    want = {"decoder": (16, 16), "upsampling_factor_after_decoder": 4}
    with Checker("prediction: where the decoder works") as c:
        if not isinstance(prediction, dict) or any(
            _core.unanswered(prediction.get(k)) for k in want
        ):
            c.true(
                False,
                "not implemented yet: fill in both predictions before measuring",
            )
            return
        c.true(
            isinstance(measured, dict)
            and measured.get("decoder") == want["decoder"],
            f"the measurement gave {measured!r}; rerun the measurement cell unchanged",
            credit=False,
        )
        got = prediction["decoder"]
        got = tuple(got) if isinstance(got, (list, tuple)) else got
        hint = "the decoder works at the low-level feature's resolution (1/4 of the image)"
        if got == (4, 4):
            hint = "(4, 4) is the encoder's output (1/16); the decoder upsamples it to the low-level feature"
        elif got == (64, 64):
            hint = "(64, 64) is the image: the last ×4 upsampling comes after the decoder"
        c.true(
            got == want["decoder"],
            f"decoder output: you predicted {prediction['decoder']!r}, measured "
            f"{measured.get('decoder') if isinstance(measured, dict) else measured!r}",
            f"{hint} ({_CH05}, section 'Shapes through the whole model')",
        )
        f = prediction["upsampling_factor_after_decoder"]
        c.true(
            _core.exact_int(f) and int(f) == 4,
            f"upsampling after the decoder: you predicted {f!r}, measured 4",
            "the logits come out at 1/4 of the image",
        )
