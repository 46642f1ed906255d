"""The book's one rule for calling a comparison: a paired effect over seeds, its 95 %
t-interval and the smallest effect the seeds could have detected.

Two configurations trained with the same seeds see the same initial weights (where
their layers coincide) and the same batches, so the book compares them seed by seed:
``d_i = a_i - b_i``. :func:`paired_effect` gives the mean of the ``d_i``, the
Student-t confidence interval around it and the minimum detectable effect (MDE: the
true effect that a test at this level would find with 80 % power, given the spread the
seeds showed). :func:`verdict` reads them:

* **holds**: the interval lies above zero (the claimed direction);
* **reversed**: the interval lies below zero;
* **inconclusive**: the interval covers zero; the MDE says how large an effect the
  seeds could have resolved.

A claim whose test here is not the paper's test gets no verdict from this rule: the
caller marks it *not tested here*.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence, Tuple

__all__ = [
    "t_quantile",
    "Effect",
    "paired_effect",
    "verdict",
    "CONFIDENCE",
    "POWER",
]

#: Two-sided confidence of the interval.
CONFIDENCE = 0.95
#: The power at which the minimum detectable effect is computed.
POWER = 0.80


def _betacf(a: float, b: float, x: float) -> float:
    # continued fraction of the regularised incomplete beta function (modified Lentz)
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _incomplete_beta(a: float, b: float, x: float) -> float:
    # I_x(a, b), the regularised incomplete beta function
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b)
        - math.lgamma(a)
        - math.lgamma(b)
        + a * math.log(x)
        + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def _t_cdf(t: float, df: int) -> float:
    tail = 0.5 * _incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t distribution with ``df`` degrees of freedom
    (``t_quantile(0.975, 2)`` is 4.303)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"t_quantile: expected 0 < p < 1, got {p!r}")
    if isinstance(df, bool) or not isinstance(df, int) or df < 1:
        raise ValueError(f"t_quantile: expected df a positive int, got {df!r}")
    lo, hi = -1e6, 1e6
    for _ in range(200):
        mid = (lo + hi) / 2
        if _t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


@dataclass(frozen=True)
class Effect:
    """A paired effect over seeds: ``mean`` of the differences, the ``low`` and
    ``high`` ends of its confidence interval, the minimum detectable effect ``mde``,
    and the per-seed ``values``."""

    mean: float
    low: float
    high: float
    mde: float
    values: Tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    def __format__(self, spec: str) -> str:
        spec = spec or "+.3f"
        return f"{self.mean:{spec}} [{self.low:{spec}}, {self.high:{spec}}]"

    def __str__(self) -> str:
        return format(self, "+.3f")


def paired_effect(
    differences: Sequence[float],
    confidence: float = CONFIDENCE,
    power: float = POWER,
) -> Effect:
    """Mean, ``confidence`` t-interval and minimum detectable effect of paired
    differences (one per seed; at least two)."""
    values = tuple(float(v) for v in differences)
    if len(values) < 2 or not all(math.isfinite(v) for v in values):
        raise ValueError(
            f"paired_effect: expected at least two finite differences, got {values!r}"
        )
    n = len(values)
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(n)
    t_alpha = t_quantile(1.0 - (1.0 - confidence) / 2.0, n - 1)
    t_beta = t_quantile(power, n - 1)
    half = t_alpha * se
    return Effect(mean, mean - half, mean + half, (t_alpha + t_beta) * se, values)


def verdict(effect: Effect) -> str:
    """``holds`` when the interval lies above zero, ``reversed`` when below,
    ``inconclusive`` when it covers zero."""
    if effect.low > 0:
        return "holds"
    if effect.high < 0:
        return "reversed"
    return "inconclusive"
