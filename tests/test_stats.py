"""The book's one verdict rule (tutorial_lib.stats) on synthetic paired data."""
from __future__ import annotations

import math
import statistics

import pytest

from tutorial_lib.stats import Effect, paired_effect, t_quantile, verdict


@pytest.mark.parametrize(
    "p, df, expected",
    [(0.975, 1, 12.7062), (0.975, 2, 4.3027), (0.975, 4, 2.7764), (0.975, 30, 2.0423),
     (0.8, 2, 1.0607), (0.8, 4, 0.9410), (0.5, 3, 0.0), (0.025, 2, -4.3027)],
)
def test_t_quantiles_match_the_tables(p, df, expected):
    assert t_quantile(p, df) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("p, df", [(0.0, 2), (1.0, 2), (0.5, 0), (0.5, 2.5), (0.5, True)])
def test_t_quantile_rejects_bad_input(p, df):
    with pytest.raises(ValueError, match="t_quantile"):
        t_quantile(p, df)


def test_interval_and_mde_by_hand():
    diffs = [0.02, 0.05, 0.08]
    e = paired_effect(diffs)
    se = statistics.stdev(diffs) / math.sqrt(3)
    assert e.mean == pytest.approx(0.05)
    assert (e.low, e.high) == pytest.approx((0.05 - 4.3027 * se, 0.05 + 4.3027 * se), abs=1e-4)
    assert e.mde == pytest.approx((4.3027 + 1.0607) * se, abs=1e-4)
    assert e.n == 3 and e.values == (0.02, 0.05, 0.08)
    assert format(e, "+.3f") == f"+0.050 [{e.low:+.3f}, {e.high:+.3f}]" == str(e)


def test_a_tiny_consistent_gain_is_inconclusive():
    # better in every seed, but the interval covers zero: the old "every seed" rule said holds
    e = paired_effect([0.001, 0.003, 0.0005])
    assert all(v > 0 for v in e.values)
    assert e.low < 0 < e.high and verdict(e) == "inconclusive"


def test_a_large_consistent_gain_holds_and_a_loss_is_reversed():
    assert verdict(paired_effect([0.35, 0.39, 0.42])) == "holds"
    assert verdict(paired_effect([-0.35, -0.39, -0.42])) == "reversed"


def test_a_mixed_result_is_inconclusive_with_a_large_mde():
    e = paired_effect([0.05, -0.03, 0.011])
    assert verdict(e) == "inconclusive" and e.mde > abs(e.mean)


def test_more_seeds_narrow_the_interval():
    three = paired_effect([0.01, 0.03, 0.02])
    five = paired_effect([0.01, 0.03, 0.02, 0.01, 0.03])
    assert (five.high - five.low) < (three.high - three.low) and five.mde < three.mde


@pytest.mark.parametrize("bad", [[], [0.1], [0.1, float("nan")], [0.1, float("inf")]])
def test_paired_effect_needs_two_finite_values(bad):
    with pytest.raises(ValueError, match="paired_effect: expected at least two finite"):
        paired_effect(bad)


def test_effect_is_a_value():
    assert Effect(0.1, 0.0, 0.2, 0.3, (0.1, 0.1)).n == 2
