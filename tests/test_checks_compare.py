"""The Part 5 checks: hints name the mistake a submission behaves like; NumPy answers are accepted."""
from __future__ import annotations

import numpy as np
import pytest

from tutorial_lib import compare, erf
from tutorial_lib.checks import run_check
from tutorial_lib.checks.compare import _pareto_variant, _radius_variant


def test_correct_answers_pass_in_any_container() -> None:
    assert run_check("pareto_front", compare.pareto_front, verbose=False) is None
    assert run_check("pareto_front", lambda c, s: np.array(compare.pareto_front(c, s)), verbose=False) is None
    assert run_check("erf_radius", lambda e, f=0.9: np.float64(erf.erf_radius(e, f)), verbose=False) is None


def test_a_numpy_answer_is_not_blamed_for_the_checkers_error() -> None:
    message = run_check("pareto_front", lambda c, s: np.array(compare.pareto_front(c, s))[::-1], verbose=False)
    assert message is not None and "ValueError" not in message and "your code raised" not in message


@pytest.mark.parametrize("mistake, looks_like", [
    ("input_order", "returning the front in input order"),
    ("identical", "letting identical models dominate each other"),
    ("cost_ties", "requiring a strictly lower cost to dominate"),
])
def test_pareto_hint_names_the_diagnosed_mistake(mistake: str, looks_like: str) -> None:
    wrong = _pareto_variant(mistake)
    message = run_check("pareto_front", lambda c, s: wrong((c, s)), verbose=False)
    problems = [ln for ln in message.splitlines() if ln.startswith("  - ")]
    assert problems and all(f"behaves like {looks_like}" in ln for ln in problems)


@pytest.mark.parametrize("mistake, looks_like", [
    ("array_centre", "measuring from the middle of the array"),
    ("peak", "normalising by the peak instead of the total mass"),
    ("one_too_far", "returning the distance one pixel after the fraction is reached"),
])
def test_erf_radius_hint_names_the_diagnosed_mistake(mistake: str, looks_like: str) -> None:
    wrong = _radius_variant(mistake)
    message = run_check("erf_radius", lambda e, f=0.9: wrong((e, f)), verbose=False)
    problems = [ln for ln in message.splitlines() if ln.startswith("  - ")]
    assert problems and all(f"behaves like {looks_like}" in ln for ln in problems)


def test_an_undiagnosed_mistake_gets_the_general_hint_not_a_case_hint() -> None:
    message = run_check("erf_radius", lambda e, f=0.9: 1.0, verbose=False)
    assert "behaves like" not in message and "no known slip" in message


@pytest.mark.parametrize("mistake, looks_like", [
    ("unnormalised", "forgetting to normalise the map"),
    ("one_layer_short", "stacking n - 1 layers instead of n"),
    ("one_layer_short_padded", "stacking n - 1 layers instead of n"),
    ("profile", "returning the 1-D profile"),
    ("sum", "adding the row and column profiles"),
    ("box", "a flat (box) map"),
])
def test_uniform_erf_hint_names_the_diagnosed_mistake(mistake: str, looks_like: str) -> None:
    from tutorial_lib.checks.compare import _uniform_variant

    message = run_check("uniform_erf", _uniform_variant(mistake), verbose=False)
    problems = [ln for ln in message.splitlines() if ln.startswith("  - ")]
    assert problems and all(f"behaves like {looks_like}" in ln for ln in problems)


def test_uniform_erf_reference_variant_passes_and_a_wrong_map_gets_the_general_hint() -> None:
    import torch

    from tutorial_lib.checks.compare import _uniform_variant

    assert run_check("uniform_erf", _uniform_variant("exact"), verbose=False) is None
    message = run_check("uniform_erf", lambda n: torch.eye(2 * n + 1) / (2 * n + 1), verbose=False)
    assert "behaves like" not in message and "outer product" in message
