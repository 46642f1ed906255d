"""Checks for Part 5 (comparing the three): a Pareto front, the ERF of uniform layers, the ERF radius.

Each student function is compared with :mod:`tutorial_lib.compare` / :mod:`tutorial_lib.erf` on
seeded cases chosen so that the classic mistakes fail a case of their own, with a hint:

* ``pareto_front``: treating a model as dominated by an identical one, forgetting ties in cost,
  returning models in input order instead of cheapest first;
* ``uniform_erf``: a flat (box) map instead of the n-fold convolution, forgetting to normalise,
  n - 1 layers, the 1-D profile, the sum of the profiles instead of their outer product;
* ``erf_radius``: measuring from the array centre instead of the centre of mass, returning the
  radius *after* the fraction is reached, normalising by the peak instead of the total mass.
"""

from __future__ import annotations

import math
from typing import Any, Callable, List, Tuple

import torch

from torch import nn

from .. import compare, erf
from . import _core
from ._core import Checker, diagnose, register, same_tensor

__all__ = ["check_pareto_front", "check_uniform_erf", "check_erf_radius"]


#: what each small case tests; the seed shuffles it, rescales both axes and adds models that
#: every other one dominates, so its answer changes with the seed and its structure stays
_PARETO_CASES = [
    (
        "a model dominated by a cheaper, better one",
        [1.0, 2.0, 3.0],
        [0.5, 0.4, 0.7],
    ),
    (
        "models given in random cost order",
        [5.0, 1.0, 3.0, 2.0],
        [0.9, 0.2, 0.8, 0.3],
    ),
    ("two models with the same cost", [1.0, 1.0, 2.0], [0.3, 0.5, 0.6]),
    ("two identical models", [1.0, 1.0, 2.0], [0.5, 0.5, 0.4]),
]


def _pareto_cases(gen: torch.Generator) -> List[Tuple[str, list, list]]:
    def uniform(low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=gen))

    cases = []
    for what, costs, scores in _PARETO_CASES:
        extra = int(torch.randint(1, 4, (), generator=gen))
        costs = costs + [max(costs) + 1.0 + i for i in range(extra)]
        scores = scores + [min(scores) - 0.1 * (i + 1) for i in range(extra)]
        a, b, c, d = (
            uniform(0.5, 4),
            uniform(0, 10),
            uniform(0.5, 1),
            uniform(0, 0.2),
        )
        order = torch.randperm(len(costs), generator=gen).tolist()
        cases.append(
            (
                what,
                [a * costs[i] + b for i in order],
                [c * scores[i] + d for i in order],
            )
        )
    costs = torch.rand(12, generator=gen).tolist()
    scores = torch.rand(12, generator=gen).tolist()
    return cases + [("twelve random models", costs, scores)]


@register(
    "pareto_front",
    forbid=["tutorial_lib.compare.pareto_front"],
    names=["pareto_front"],
    description="pareto_front(costs, scores) -> list of indices, cheapest first",
)
def check_pareto_front(fn: Callable[..., Any]) -> None:
    """Check ``pareto_front(costs, scores) -> list[int]`` against :func:`tutorial_lib.compare.pareto_front`."""
    cases = _pareto_cases(_core.generator(3))
    with Checker("Pareto front") as c:
        answers = []
        for what, cost, score in cases:
            try:
                answers.append(
                    ((cost, score), _indices(fn(list(cost), list(score))))
                )
            except Exception as err:
                if c.stub(err, "pareto_front"):
                    return
                raise
        wrong = any(got != compare.pareto_front(*case) for case, got in answers)
        found = (
            diagnose(answers, _PARETO_MISTAKES, lambda got, value: got == value)
            if wrong
            else None
        )
        hint = (
            f"your pareto_front behaves like {found[0]}; {found[1]}"
            if found
            else _PARETO_HINT
        )
        for (what, _, _), ((cost, score), got) in zip(cases, answers):
            c.equal(got, compare.pareto_front(cost, score), what, hint)


def _front(
    costs: list,
    scores: list,
    dominates: Callable[[int, int], bool],
    by_cost: bool = True,
) -> List[int]:
    keep = [
        i
        for i in range(len(costs))
        if not any(dominates(j, i) for j in range(len(costs)) if j != i)
    ]
    return sorted(keep, key=lambda i: (costs[i], i)) if by_cost else keep


def _pareto_variant(mistake: str) -> Callable[[Tuple[list, list]], List[int]]:
    def run(case: Tuple[list, list]) -> List[int]:
        c, s = case
        # noqa: E731
        right = lambda j, i: (
            c[j] <= c[i] and s[j] >= s[i] and (c[j] < c[i] or s[j] > s[i])
        )
        if mistake == "input_order":
            return _front(c, s, right, by_cost=False)
        if mistake == "identical":
            return _front(c, s, lambda j, i: c[j] <= c[i] and s[j] >= s[i])
        # "cost_ties"
        return _front(c, s, lambda j, i: c[j] < c[i] and s[j] >= s[i])

    return run


_PARETO_MISTAKES = [
    (
        _pareto_variant("input_order"),
        "returning the front in input order",
        "sort the kept indices by cost, cheapest first (ties by index)",
    ),
    (
        _pareto_variant("identical"),
        "letting identical models dominate each other",
        "j dominates i only if it is at least as good on both axes and strictly better on one: keep both copies",
    ),
    (
        _pareto_variant("cost_ties"),
        "requiring a strictly lower cost to dominate",
        "at equal cost the model with the better score dominates the other",
    ),
]
_PARETO_HINT = (
    "keep model i unless some j costs no more and scores no less, strictly better on one of the "
    "two; list the kept indices by cost, cheapest first"
)


def _indices(got: Any) -> Any:
    """A list of Python ints from a list, tuple, tensor or NumPy array of indices (else unchanged)."""
    if hasattr(got, "tolist") and not isinstance(got, (list, tuple)):
        got = got.tolist()  # torch.Tensor and numpy.ndarray alike
    if isinstance(got, (list, tuple)) and all(
        isinstance(i, int) or (isinstance(i, float) and i.is_integer()) for i in got
    ):
        return [int(i) for i in got]
    return got


def _uniform_stack_erf(n: int) -> torch.Tensor:
    """The library's measurement: ERF of ``n`` stacked single-channel 3x3 all-ones convolutions."""
    stack = nn.Sequential(
        *[nn.Conv2d(1, 1, 3, padding=1, bias=False) for _ in range(n)]
    )
    for conv in stack:
        nn.init.ones_(conv.weight)
    size = 2 * n + 3
    measured = erf.effective_receptive_field(
        stack, torch.ones(1, 1, size, size), reduce="sum"
    )
    # the (2n+1) x (2n+1) theoretical field around the centre
    window = measured[1:-1, 1:-1]
    return window / window.sum()


@register(
    "uniform_erf",
    forbid=["tutorial_lib.erf.effective_receptive_field"],
    names=["uniform_erf"],
    description="uniform_erf(n) -> (2n+1, 2n+1) ERF of n stacked uniform 3x3 convolutions, sum 1",
)
def check_uniform_erf(fn: Callable[..., Any]) -> None:
    """Check ``uniform_erf(n)`` against the ERF measured by backpropagation through ``n`` uniform layers."""
    answers = []
    with Checker("uniform-stack ERF") as c:
        for n in (1, 2, 5, 12):
            try:
                answers.append((n, fn(n)))
            except Exception as err:
                if c.stub(err, "uniform_erf"):
                    return
                raise
        wrong = any(not _same_map(got, _uniform_stack_erf(n)) for n, got in answers)
        found = diagnose(answers, _UNIFORM_MISTAKES, _same_map) if wrong else None
        hint = (
            f"your uniform_erf behaves like {found[0]}; {found[1]}"
            if found
            else _UNIFORM_HINT
        )
        for n, got in answers:
            if not isinstance(got, torch.Tensor):
                c.true(
                    False,
                    f"n={n}: expected a tensor, got {type(got).__name__}",
                    hint,
                )
                continue
            c.close(
                got.double(),
                _uniform_stack_erf(n),
                f"n={n}",
                hint,
                atol=1e-9,
                rtol=1e-6,
            )


def _same_map(got: Any, value: torch.Tensor) -> bool:
    return same_tensor(got, value.double(), atol=1e-9, rtol=1e-6)


def _profile(n: int) -> torch.Tensor:
    """The coefficients of (1 + z + z^2)^n: the 1-D weights of n stacked 3-tap box filters."""
    p = torch.ones(1, dtype=torch.float64)
    for _ in range(n):
        p = torch.nn.functional.conv1d(
            p.view(1, 1, -1), torch.ones(1, 1, 3, dtype=torch.float64), padding=2
        ).flatten()
    return p


def _uniform_variant(mistake: str) -> Callable[[int], torch.Tensor]:
    def run(n: int) -> torch.Tensor:
        p = _profile(n - 1 if mistake.startswith("one_layer_short") else n)
        if mistake == "one_layer_short_padded":
            p = torch.nn.functional.pad(p, (1, 1))
        if mistake == "profile":
            return p / p.sum()
        grid = (
            p[:, None] + p[None, :] if mistake == "sum" else p[:, None] * p[None, :]
        )
        if mistake == "box":
            grid = torch.ones_like(grid)
        return grid if mistake == "unnormalised" else grid / grid.sum()

    return run


_UNIFORM_MISTAKES = [
    (
        _uniform_variant("unnormalised"),
        "forgetting to normalise the map",
        "divide by the sum, so that the map sums to 1",
    ),
    (
        _uniform_variant("one_layer_short"),
        "stacking n - 1 layers instead of n",
        "convolve [1, 1, 1] with itself n times (n layers), giving 2n + 1 weights per axis",
    ),
    (
        _uniform_variant("one_layer_short_padded"),
        "stacking n - 1 layers instead of n",
        "convolve [1, 1, 1] with itself n times (n layers), giving 2n + 1 weights per axis",
    ),
    (
        _uniform_variant("profile"),
        "returning the 1-D profile",
        "return the (2n + 1) x (2n + 1) map: the outer product of the profile with itself",
    ),
    (
        _uniform_variant("sum"),
        "adding the row and column profiles",
        "the 2-D weights multiply: take the outer product of the profile with itself, not the sum",
    ),
    (
        _uniform_variant("box"),
        "a flat (box) map",
        "the layers do not spread the gradient evenly: per axis the weights are the coefficients of "
        "(1 + z + z^2)^n",
    ),
]
_UNIFORM_HINT = (
    "per axis the weights are the coefficients of (1 + z + z^2)^n (convolve [1, 1, 1] with "
    "itself n times); the map is their outer product, divided by its sum"
)


def _gaussian(size: int, sigma: float, centre: Tuple[float, float]) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float64)
    return torch.exp(
        -((r[:, None] - centre[0]) ** 2 + (r[None, :] - centre[1]) ** 2)
        / (2 * sigma**2)
    )


def _erf_cases(gen: torch.Generator) -> List[Tuple[str, torch.Tensor, float]]:
    """Six maps with six different radii (no constant answer passes two), drawn from
    ``gen``: where the mass sits, sizes, widths and weights follow the seed, and so do
    all radii but the one-pixel map's 0; what each case tests stays."""

    def pick(low: int, high: int) -> int:
        return int(torch.randint(low, high + 1, (), generator=gen))

    def uniform(low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=gen))

    def blank(low: int, high: int) -> torch.Tensor:
        return torch.zeros(pick(low, high), pick(low, high), dtype=torch.float64)

    for _ in range(100):  # a draw with two equal radii is drawn again
        point = blank(7, 12)
        point[pick(0, point.shape[0] - 1), pick(0, point.shape[1] - 1)] = 1.0
        # off-grid centres of mass (unequal weights, a Gaussian's centre): radii vary
        d = pick(2, 5)
        ring = blank(2 * d + 1, 2 * d + 4)
        r, c = pick(d, ring.shape[0] - 1 - d), pick(d, ring.shape[1] - 1 - d)
        ring[r, c] = 1.0
        for i, j in ((r - d, c), (r + d, c), (r, c - d), (r, c + d)):
            ring[i, j] = uniform(0.7, 1.3)
        line = blank(6, 10)
        r, c = pick(1, line.shape[0] - 2), pick(1, line.shape[1] - 2)
        pixels = torch.tensor([uniform(0.6, 1.4), 1.0, uniform(0.6, 1.4)])
        if pick(0, 1):
            line[r, c - 1 : c + 2] = pixels
        else:
            line[r - 1 : r + 2, c] = pixels
        centre = (16 + uniform(-0.5, 0.5), 16 + uniform(-0.5, 0.5))
        centred = _gaussian(33, uniform(2.5, 3.5), centre)
        off = _gaussian(33, uniform(2.0, 3.0), (uniform(8, 12), uniform(19, 23)))
        noise = torch.rand(pick(16, 24), pick(16, 24), generator=gen)
        cases = [
            ("all mass on one pixel", point, 0.9),
            (f"a pixel and four unequal ones at distance {d}", ring, 0.9),
            ("three unequal pixels in a row at fraction 0.5", line, 0.5),
            ("a Gaussian near the centre of a 33x33 map", centred, 0.9),
            ("a Gaussian off the array centre", off, 0.9),
            ("random gradient magnitudes", noise.double(), 0.5),
        ]
        radii = sorted(erf.erf_radius(m, f) for _, m, f in cases)
        if min(b - a for a, b in zip(radii, radii[1:])) > 1e-3:
            return cases
    raise RuntimeError("erf_radius check: no draw with distinct radii")


@register(
    "erf_radius",
    forbid=["tutorial_lib.erf.erf_radius", "tutorial_lib.erf.erf_mass_curve"],
    names=["erf_radius"],
    description="erf_radius(erf, fraction=0.9) -> float (radius around the centre of mass)",
)
def check_erf_radius(fn: Callable[..., Any]) -> None:
    """Check ``erf_radius(erf, fraction) -> float`` against :func:`tutorial_lib.erf.erf_radius` (to 1e-6).

    Six seeded maps: one pixel, a ring, a line, two Gaussians and random magnitudes, placed and
    sized by the seed and with six different radii (a constant answer passes one case at most).
    """
    cases = _erf_cases(_core.generator(5))
    with Checker("ERF radius") as c:
        answers = []
        for what, erf_map, fraction in cases:
            try:
                got = fn(erf_map.clone(), fraction)
            except Exception as err:
                if c.stub(err, "erf_radius"):
                    return
                raise
            got = (
                float(got)
                if isinstance(got, (int, float, torch.Tensor))
                and not isinstance(got, bool)
                else got
            )
            answers.append(((erf_map, fraction), got))

        def same(got: Any, value: float) -> bool:
            return (
                isinstance(got, float)
                and math.isfinite(got)
                and abs(got - value) <= 1e-6
            )

        wrong = any(not same(got, erf.erf_radius(*case)) for case, got in answers)
        found = diagnose(answers, _ERF_MISTAKES, same) if wrong else None
        hint = (
            f"your erf_radius behaves like {found[0]}; {found[1]}"
            if found
            else _ERF_HINT
        )
        for (what, _, fraction), (case, got) in zip(cases, answers):
            want = erf.erf_radius(*case)
            c.true(
                same(got, want),
                f"{what} (fraction {fraction}): expected {want:.6f}, got {got!r}",
                hint,
            )


def _radius_variant(mistake: str) -> Callable[[Tuple[torch.Tensor, float]], float]:
    def run(case: Tuple[torch.Tensor, float]) -> float:
        erf_map, fraction = case
        if mistake == "array_centre":
            return erf.erf_radius(
                erf_map,
                fraction,
                center=((erf_map.shape[0] - 1) / 2, (erf_map.shape[1] - 1) / 2),
            )
        radii, share = erf.erf_mass_curve(erf_map)
        if mistake == "peak":
            share = torch.cumsum(
                (erf_map / erf_map.max()).flatten()[
                    torch.argsort(_distances(erf_map), stable=True)
                ],
                0,
            )
        index = int((share >= fraction - 1e-12).nonzero()[0])
        if mistake == "one_too_far":
            index = min(index + 1, len(radii) - 1)
        return float(radii[index])

    return run


def _distances(erf_map: torch.Tensor) -> torch.Tensor:
    mass = erf_map / erf_map.sum()
    rows = torch.arange(erf_map.shape[0], dtype=torch.float64)[:, None].expand_as(
        mass
    )
    cols = torch.arange(erf_map.shape[1], dtype=torch.float64)[None, :].expand_as(
        mass
    )
    r0, c0 = float((mass * rows).sum()), float((mass * cols).sum())
    return ((rows - r0) ** 2 + (cols - c0) ** 2).sqrt().flatten()


_ERF_MISTAKES = [
    (
        _radius_variant("array_centre"),
        "measuring from the middle of the array",
        "measure distances from the centre of mass (the mass-weighted mean row and column)",
    ),
    (
        _radius_variant("peak"),
        "normalising by the peak instead of the total mass",
        "divide by erf.sum(), so that the shares add up to 1",
    ),
    (
        _radius_variant("one_too_far"),
        "returning the distance one pixel after the fraction is reached",
        "return the distance of the first pixel at which the accumulated share reaches the fraction",
    ),
]
_ERF_HINT = (
    "no known slip explains these radii: reread the definition of the radius in chapter 13, section "
    "'Theoretical and effective receptive fields' (from where distances are measured, what share is "
    "accumulated, and at which pixel it stops)"
)


# -- predict-then-measure (chapters 12 and 13) ---------------------------------------------------------

__all__ += [
    "measure_model_costs",
    "check_predict_model_costs",
    "measure_uniform_erf_radii",
    "check_predict_erf_growth",
]


def measure_model_costs(names: Any = None, size: int = 64) -> dict:
    """Parameters and MACs (one ``size × size`` image) of the untrained capstone models
    (``compare.build_model``), counted by the library: ``{name: {"params": int, "macs": int}}``.
    Exact numbers, so the same on every machine."""
    from ..profiling import count_macs, count_params

    names = list(compare.CAPSTONE_MODELS) if names is None else list(names)
    result = {}
    for name in names:
        _core.manual_seed(0)
        model = compare.build_model(name).eval()
        with torch.no_grad():
            macs = int(count_macs(model, torch.zeros(1, 3, size, size)).total)
        result[name] = {"params": int(count_params(model)), "macs": macs}
    return result


def check_predict_model_costs(prediction: Any, measured: Any) -> None:
    """Predict-then-measure (chapter 12): which capstone model has the most parameters, which needs the
    most MACs per 64×64 image, and are they the same model?

    ``prediction = {"most_params": name, "most_macs": name, "same_model": bool}``; ``measured`` is
    ``measure_model_costs()``. The reasoning expected: parameters grow with the channel widths and the
    number of layers, MACs with the widths *times the positions each layer runs at* — a model that keeps
    a fine grid (a decoder at 1/4) pays MACs without parameters.
    """
    with Checker("prediction: parameters against MACs") as c:
        keys = ("most_params", "most_macs", "same_model")
        if not isinstance(prediction, dict) or any(
            _core.unanswered(prediction.get(k)) for k in keys
        ):
            c.true(
                False,
                "not implemented yet: fill in the three predictions before measuring",
            )
            return
        if not (
            isinstance(measured, dict)
            and measured
            and all("params" in v for v in measured.values())
        ):
            c.true(
                False,
                "expected the dict of checks.measure_model_costs(); rerun that cell",
                credit=False,
            )
            return
        most_p = max(measured, key=lambda k: measured[k]["params"])
        most_m = max(measured, key=lambda k: measured[k]["macs"])
        norm = lambda v: _core.as_choice(v).replace(" ", "_")  # noqa: E731
        c.true(
            norm(prediction["most_params"]) == most_p,
            f"most parameters: you predicted {prediction['most_params']!r}, measured {most_p!r}",
            "parameters count weights only: wide layers repeated many times (chapter 12, section 'Cost and speed')",
        )
        c.true(
            norm(prediction["most_macs"]) == most_m,
            f"most MACs: you predicted {prediction['most_macs']!r}, measured {most_m!r}",
            "MACs multiply each layer's weights by the number of positions it runs at: look for the model "
            "whose wide layers run on the finest grid",
        )
        c.true(
            bool(prediction["same_model"]) is (most_p == most_m),
            f"same model: you predicted {prediction['same_model']!r}; measured {most_p == most_m}",
            "parameters and MACs rank models differently when their layers run at different resolutions",
        )


def measure_uniform_erf_radii(depths: Any = (4, 16), fraction: float = 0.9) -> dict:
    """The ``fraction`` ERF radius of stacks of ``n`` uniform 3×3 convolutions, measured by
    backpropagation (``erf.effective_receptive_field``, then ``erf.erf_radius``): ``{n: radius}``, and the
    theoretical half-width ``n`` beside it under ``"theoretical"``."""
    radii = {}
    for n in depths:
        radii[int(n)] = float(erf.erf_radius(_uniform_stack_erf(int(n)), fraction))
    return {"radius": radii, "theoretical": {int(n): int(n) for n in depths}}


def check_predict_erf_growth(prediction: Any, measured: Any) -> None:
    """Predict-then-measure (chapter 13): from 4 to 16 uniform 3×3 layers the theoretical receptive field
    grows 4× (radius n). By what factor does the 90 % ERF radius grow?

    ``prediction`` is a number; ``measured = measure_uniform_erf_radii((4, 16))``. Expected reasoning:
    the ERF of n uniform layers is the n-fold convolution of a box — approximately Gaussian with a width
    ∝ √n — so about 2×. Compared with the measurement to 20 %.
    """
    with Checker("prediction: how the ERF grows with depth") as c:
        if _core.unanswered(prediction):
            c.true(
                False,
                "not implemented yet: write your predicted factor before measuring",
            )
            return
        try:
            r = measured["radius"]
            factor = r[16] / r[4]
        except (TypeError, KeyError, ZeroDivisionError):
            c.true(
                False,
                "expected the dict of checks.measure_uniform_erf_radii((4, 16)); rerun that cell",
                credit=False,
            )
            return
        hint = (
            "the gradient spreads like a sum of n independent steps of −1, 0 or +1: how does the spread of "
            "such a sum grow with n? (chapter 13, section 'Theoretical and effective receptive fields')"
        )
        if _core.close_enough(prediction, 4.0, 0.1):
            hint = "4× is the theoretical field's growth; the effective field concentrates near the centre"
        c.true(
            _core.close_enough(prediction, factor, 0.2),
            f"you predicted ×{prediction!r}, measured ×{factor:.2f} (radii {r[4]:.2f} → {r[16]:.2f})",
            hint,
        )
