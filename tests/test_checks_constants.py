"""A constant answer earns nothing, on every graded check.

Each registered check's cases are built so that no constant (a number, a tensor of
a fixed shape, a tuple or a list a student could hard-code) passes more than one of
them, and the scoring (``checks._core.score``, what the grader awards) gives
nothing for a single pass. For every check, on the public and two private seeds,
the correct answer is recorded case by case; then each recorded answer, 0, 1, the
mean of the answers and tensors of zeros and ones of each answer's shape are
submitted as constants (a function returning it, or a module without parameters
whose ``forward`` returns it): at most one case passes, and the score is 0.
"""

from __future__ import annotations

import contextlib
import copy
import io
import sys

import pytest
import torch
from torch import nn

from tutorial_lib import metrics
from tutorial_lib.checks import REGISTRY, CheckFailed, _core

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from test_exercises import EXERCISES  # noqa: E402

SEEDS = [None, 20261129, 31337]
#: the correct answer of checks graded without an exercise in the book
OUTSIDE_THE_BOOK = {
    "confusion_matrix": lambda p, t, k, ignore_index=255: metrics.confusion_matrix(
        p, t, k, ignore_index=ignore_index
    ),
}


def _solution(name: str):
    for ex in EXERCISES:
        if ex.check_name == name:
            namespace: dict = {"__name__": "__main__"}
            exec(compile(ex.solution, f"<solution of {name}>", "exec"), namespace)
            return next(
                namespace[n] for n in REGISTRY[name].names if n in namespace
            )
    return OUTSIDE_THE_BOOK[name]


def _grade(name: str, obj) -> tuple:
    """(the share of the points the grader awards, the credited expectations)."""
    _core.LOG = []
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            REGISTRY[name].func(obj)
        passed = True
    except CheckFailed:
        passed = False
    except (
        Exception
    ):  # the check could not use the answer: the grader awards nothing
        return 0.0, sum(c.credited for c in _core.LOG)
    finally:
        checkers, _core.LOG = _core.LOG, None
    return (1.0 if passed else _core.score(checkers)), sum(
        c.credited for c in checkers
    )


def _recorded(name: str) -> list:
    """What the correct answer (or its module's ``forward``) returns, per case."""
    solution, answers = _solution(name), []
    if isinstance(solution, type):

        class Recorded(solution):
            def forward(self, *args, **kwargs):
                answers.append(super().forward(*args, **kwargs))
                return answers[-1]

        Recorded.__name__ = Recorded.__qualname__ = solution.__name__
        answer = Recorded
    else:

        def answer(*args, **kwargs):
            answers.append(solution(*args, **kwargs))
            return answers[-1]

    assert _grade(name, answer)[0] == 1.0, f"the correct {name} does not pass"
    return [_detached(a) for a in answers]


def _detached(value):
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, tuple):
        return tuple(_detached(v) for v in value)
    return value


def _constants(answers: list) -> list:
    """Each distinct answer, 0, 1, -1, the mean of the numbers and of each shape's
    tensors, zeros and ones of each tensor's shape, an empty and a one-item list."""
    found = list(answers) + [0, 1, -1, 0.0, 1.0, 0.5, [], [0]]
    numbers = [float(a) for a in answers if isinstance(a, (int, float))]
    if numbers:
        found.append(sum(numbers) / len(numbers))
    tuples = [
        a
        for a in answers
        if isinstance(a, tuple) and all(isinstance(v, int) for v in a)
    ]
    if tuples:
        found.append(tuple(int(sum(v) / len(tuples)) for v in zip(*tuples)))
    tensors = [a for a in answers if isinstance(a, torch.Tensor)]
    tensors += [
        t
        for a in answers
        if isinstance(a, tuple)
        for t in a
        if isinstance(t, torch.Tensor)
    ]
    for shape in {t.shape: None for t in tensors}:
        same = [t for t in tensors if t.shape == shape]
        mean = (sum(t.double() for t in same) / len(same)).to(same[0].dtype)
        found += [torch.zeros_like(same[0]), torch.ones_like(same[0]), mean]
    unique = {}
    for value in found:
        unique.setdefault(repr(value), value)
    return list(unique.values())


def _constant(name: str, value):
    """A submission that answers ``value`` whatever it is asked."""
    if not isinstance(_solution(name), type):
        return lambda *args, **kwargs: copy.deepcopy(value)

    class Constant(nn.Module):
        def __init__(self, *args, **kwargs):
            super().__init__()

        def forward(self, *args, **kwargs):
            return copy.deepcopy(value)

    Constant.__name__ = Constant.__qualname__ = REGISTRY[name].names[0]
    return Constant


def test_every_registered_check_has_a_correct_answer_to_record() -> None:
    book = {ex.check_name for ex in EXERCISES}
    assert set(REGISTRY) <= book | set(OUTSIDE_THE_BOOK)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed-{s}")
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_a_constant_answer_passes_one_case_at_most_and_earns_nothing(
    name: str, seed
) -> None:
    _core.set_private_seed(seed)
    try:
        answers = _recorded(name)
        assert len(answers) >= 2, f"{name}: one case cannot tell a constant"
        earned = {}
        for value in _constants(answers):
            share, credited = _grade(name, _constant(name, value))
            if share > 0 or credited > 1:
                earned[repr(value)[:80]] = (share, credited)
    finally:
        _core.set_private_seed(None)
    assert not earned, (
        f"{name}: constants that pass or earn (share, passed): {earned}"
    )


def test_one_pass_earns_nothing_and_two_earn_their_share() -> None:
    one, two, stub = (_core.Checker("t", verbose=False) for _ in range(3))
    for checker, passes in ((one, 1), (two, 2), (stub, 2)):
        for _ in range(passes):
            checker.true(True, "")
        checker.true(False, "a failure")
    stub.stub(NotImplementedError(), "f")
    assert (one.credit, two.credit, stub.credit) == (0.0, 2 / 3, 0.0)


#: checks whose answers a table prepared at home gives: no seed can change them
MEMOISABLE = {"uniform_erf": "its one input is a small integer n"}
FUNCTIONS = sorted(n for n in REGISTRY if not isinstance(_solution(n), type))


@pytest.mark.parametrize("name", [n for n in FUNCTIONS if n not in MEMOISABLE])
def test_the_public_answers_replayed_earn_nothing_on_a_private_seed(
    name: str,
) -> None:
    """The seed changes every case but one, so answers memoised from the public
    cases (replayed in the order they were asked) pass one case at most: 0."""
    public, calls = _recorded(name), []

    def replay(*args, **kwargs):
        calls.append(None)
        return copy.deepcopy(public[(len(calls) - 1) % len(public)])

    _core.set_private_seed(20261129)
    try:
        share, credited = _grade(name, replay)
    finally:
        _core.set_private_seed(None)
    assert (share, credited <= 1) == (0.0, True), (share, credited)
