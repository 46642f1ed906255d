"""The machinery every check shares: a registry, readable feedback, and comparisons.

A check takes the student's function or class, runs it on several seeded inputs, compares
with ``tutorial_lib``'s own component, prints short feedback (what failed, expected vs got,
a hint) and raises ``AssertionError`` on failure so that graders can count it. A check
never prints the solution's code.
"""
from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

__all__ = ["Check", "REGISTRY", "register", "Checker", "CheckFailed"]


# Frames in these folders are library code; a student's error is reported at their own line.
_LIBRARY_PATHS = tuple(os.path.dirname(m.__file__) for m in (torch,)) + (
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),)


class CheckFailed(AssertionError):
    """Raised by a check whose expectations were not met (an ``AssertionError``)."""


@dataclass
class Check:
    """A registered check: ``names`` are the submission symbols it grades."""

    name: str
    names: Tuple[str, ...]
    func: Callable[[Any], None]
    description: str
    points: float = 1.0


REGISTRY: Dict[str, Check] = {}


def register(name: str, names: Sequence[str], description: str, points: float = 1.0) -> Callable:
    """Register a check under ``name``; the autograder runs it on a submission symbol in ``names``.

    ``names`` are the top-level functions or classes of a submission the check grades (the first
    one defined is passed to the check); ``points`` is what the autograder awards when it passes.
    """
    if isinstance(names, str) or not names or not all(isinstance(n, str) and n.isidentifier() for n in names):
        raise ValueError(f"register: expected names a non-empty sequence of identifiers, got {names!r}")
    if isinstance(points, bool) or not isinstance(points, (int, float)) or points <= 0:
        raise ValueError(f"register: expected points a positive number, got {points!r}")

    def deco(func: Callable[[Any], None]) -> Callable[[Any], None]:
        if name in REGISTRY:
            raise ValueError(f"register: a check named {name!r} exists already")
        REGISTRY[name] = Check(name, tuple(names), func, description, float(points))
        func.check_name = name  # type: ignore[attr-defined]
        return func

    return deco


@dataclass
class Checker:
    """Collects expectations for one check and reports them.

    Use as a context manager: ``with Checker("atrous convolution") as c: c.close(got, want, ...)``.
    On exit it prints one line per failed expectation (or a single success line) and raises
    ``CheckFailed`` if anything failed. An exception raised by the student's code inside the
    block is reported as a failure with its type and message, never with the solution.
    """

    title: str
    verbose: bool = True
    failures: List[str] = field(default_factory=list)
    passed: int = 0

    def __enter__(self) -> "Checker":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if exc_type is not None and not issubclass(exc_type, CheckFailed):
            frames = traceback.extract_tb(tb)
            # Point at the student's code, not at the torch or tutorial_lib function it called.
            own = [f for f in frames if not any(part in f.filename for part in _LIBRARY_PATHS)]
            frame = (own or frames or [None])[-1]
            where = f" (line {frame.lineno} of {frame.name})" if frame is not None else ""
            self.failures.append(f"your code raised {exc_type.__name__}: {exc}{where}")
        total = self.passed + len(self.failures)
        if self.failures:
            lines = [f"✗ {self.title}: {len(self.failures)} problem(s), {self.passed} of {total} checks passed"]
            lines += [f"  - {f}" for f in self.failures]
            if self.verbose:
                print("\n".join(lines))
            raise CheckFailed("\n".join(lines)) from None
        if self.verbose:
            print(f"✓ {self.title}: all {self.passed} checks passed")
        return False

    # -- expectations -------------------------------------------------------------------
    def _record(self, ok: bool, message: str) -> bool:
        if ok:
            self.passed += 1
        else:
            self.failures.append(message)
        return ok

    def true(self, condition: bool, what: str, hint: str = "") -> bool:
        """Expect ``condition`` to hold."""
        return self._record(bool(condition), what + (f". Hint: {hint}" if hint else ""))

    def equal(self, got: Any, expected: Any, what: str, hint: str = "") -> bool:
        """Expect ``got == expected`` (numbers, tuples, strings)."""
        msg = f"{what}: expected {expected!r}, got {got!r}" + (f". Hint: {hint}" if hint else "")
        return self._record(got == expected, msg)

    def shape(self, got: Any, expected: Sequence[int], what: str, hint: str = "") -> bool:
        """Expect a tensor of shape ``expected``."""
        if not isinstance(got, torch.Tensor):
            return self._record(False, f"{what}: expected a tensor of shape {tuple(expected)}, "
                                       f"got {type(got).__name__}")
        msg = f"{what}: expected shape {tuple(expected)}, got {tuple(got.shape)}"
        return self._record(tuple(got.shape) == tuple(expected), msg + (f". Hint: {hint}" if hint else ""))

    def close(self, got: Any, expected: torch.Tensor, what: str, hint: str = "",
              atol: float = 1e-5, rtol: float = 1e-4) -> bool:
        """Expect a tensor equal to ``expected`` within tolerance (shape checked first)."""
        if not self.shape(got, expected.shape, what + " (shape)", hint):
            return False
        got = got.detach().to(expected.dtype)
        ok = torch.allclose(got, expected, atol=atol, rtol=rtol)
        if ok:
            return self._record(True, "")
        err = (got - expected).abs().max().item()
        msg = f"{what}: values differ from the reference (max abs difference {err:.3g}, tolerance {atol:g})"
        return self._record(False, msg + (f". Hint: {hint}" if hint else ""))


def run_check(name: str, obj: Any, verbose: bool = True) -> Optional[str]:
    """Run the registered check ``name`` on ``obj``; return ``None`` if it passed, else the report."""
    check = REGISTRY[name]
    try:
        check.func(obj) if verbose else _quiet(check.func, obj)
    except AssertionError as err:
        return str(err)
    return None


def _quiet(func: Callable[[Any], None], obj: Any) -> None:
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        func(obj)
