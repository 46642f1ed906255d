"""The machinery every check shares: a registry, readable feedback, and comparisons.

A check takes the student's function or class, runs it on several seeded inputs, compares
with ``tutorial_lib``'s own component, prints short feedback (what failed, expected vs got,
a hint) and raises ``AssertionError`` on failure so that graders can count it. A check
never prints the solution's code.
"""

from __future__ import annotations

import json
import os
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

__all__ = [
    "Check",
    "REGISTRY",
    "register",
    "Checker",
    "CheckFailed",
    "generator",
    "manual_seed",
    "set_private_seed",
]


# Frames in these folders are library code; a student's error is reported at their own line.
_LIBRARY_PATHS = tuple(os.path.dirname(m.__file__) for m in (torch,)) + (
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
)


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
    #: dotted paths of the library objects a submission must not use for this exercise
    forbid: Tuple[str, ...] = ()


REGISTRY: Dict[str, Check] = {}


def register(
    name: str,
    names: Sequence[str],
    description: str,
    points: float = 1.0,
    forbid: Sequence[str] = (),
) -> Callable:
    """Register a check under ``name``; the autograder runs it on a submission symbol in ``names``.

    ``names`` are the top-level functions or classes of a submission the check grades (the first
    one defined is passed to the check); ``points`` is what the autograder awards when it passes.
    ``forbid`` lists the dotted paths of ``tutorial_lib``'s own implementation of the component
    (``"tutorial_lib.erf.erf_radius"``): the grader's sandbox has a student edition of the library
    without them.
    """
    if isinstance(forbid, str) or not all(
        isinstance(f, str) and f.startswith("tutorial_lib.") for f in forbid
    ):
        raise ValueError(
            f"register: expected forbid a sequence of 'tutorial_lib.…' paths, got {forbid!r}"
        )
    if (
        isinstance(names, str)
        or not names
        or not all(isinstance(n, str) and n.isidentifier() for n in names)
    ):
        raise ValueError(
            f"register: expected names a non-empty sequence of identifiers, got {names!r}"
        )
    if (
        isinstance(points, bool)
        or not isinstance(points, (int, float))
        or points <= 0
    ):
        raise ValueError(
            f"register: expected points a positive number, got {points!r}"
        )

    def deco(func: Callable[[Any], None]) -> Callable[[Any], None]:
        if name in REGISTRY:
            raise ValueError(f"register: a check named {name!r} exists already")
        REGISTRY[name] = Check(
            name, tuple(names), func, description, float(points), tuple(forbid)
        )
        func.check_name = name  # type: ignore[attr-defined]
        return func

    return deco


_PRIVATE_SEED: Optional[int] = None


def set_private_seed(seed: Optional[int]) -> None:
    """Make every check draw its random cases from ``seed`` (the instructor's), or the public ones (``None``).

    Only the grading process knows the seed: the submission's process receives inputs, never the seed.
    """
    global _PRIVATE_SEED
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(
            f"set_private_seed: expected an integer or None, got {seed!r}"
        )
    _PRIVATE_SEED = seed


def _mix(seed: int) -> int:
    if _PRIVATE_SEED is None:
        return seed
    import hashlib

    digest = hashlib.sha256(f"{_PRIVATE_SEED}:{seed}".encode()).digest()
    return int.from_bytes(digest[:7], "little")


def generator(seed: int) -> torch.Generator:
    """A ``torch.Generator`` for a check's public ``seed``, or its private counterpart when one is set."""
    return torch.Generator().manual_seed(_mix(seed))


def manual_seed(seed: int) -> None:
    """``torch.manual_seed`` of a check's public ``seed`` (or its private counterpart)."""
    torch.manual_seed(_mix(seed))


#: when a list, every Checker appends itself on entry (the grader reads the counts for partial credit)
LOG: Optional[List["Checker"]] = None

#: the fewest passed expectations that earn partial credit: a check's cases are built so that no
#: constant answer passes more than one (tests/test_checks_constants.py), so one alone earns nothing
MIN_CREDITED = 2


def score(checkers: Sequence["Checker"]) -> float:
    """The share of a check's points its expectations earn: passed / (passed + failed), counting
    neither preconditions nor a single pass (what a constant can get), and 0 for a stub."""
    credited = sum(c.credited for c in checkers)
    units = credited + sum(len(c.failures) for c in checkers)
    if any(c.not_implemented for c in checkers) or credited < MIN_CREDITED:
        return 0.0
    return credited / units


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
    #: passes that earn partial credit (a precondition, ``true(..., credit=False)``, is shown in the
    #: count but earns nothing)
    credited: int = 0
    not_implemented: bool = False  # a stub: no partial credit

    def __enter__(self) -> "Checker":
        if LOG is not None:
            LOG.append(self)
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if exc_type is not None and not issubclass(exc_type, Exception):
            return False  # a timeout, a dead submission process, Ctrl-C: not the check's to report
        if exc_type is not None and not issubclass(exc_type, CheckFailed):
            remote = getattr(exc, "student_where", None)
            if exc_type is NotImplementedError and not str(exc):  # the stub
                self.not_implemented = True
                self.failures.append(
                    f"not implemented yet (it raised NotImplementedError{remote or ''})"
                )
            # raised by the submission in its own process (the autograder)
            elif remote is not None:
                self.failures.append(student_raised(exc))
            else:
                frames = traceback.extract_tb(tb)
                # Point at the student's code, not at the torch or tutorial_lib function it called.
                own = [
                    f
                    for f in frames
                    if not any(part in f.filename for part in _LIBRARY_PATHS)
                ]
                frame = (own or [None])[-1]
                if frame is not None:
                    self.failures.append(
                        f"your code raised {exc_type.__name__}: {exc} "
                        f"(line {frame.lineno} of {frame.name})"
                    )
                else:  # the check could not use what the submission returned
                    self.failures.append(
                        f"the check could not use your result ({exc_type.__name__}: {exc})"
                    )
        total = self.passed + len(self.failures)
        if self.failures:
            pre = self.passed - self.credited
            count = (
                f"{self.passed} of {total} checks passed"
                if not pre
                else f"{self.credited} of {total - pre} graded checks passed (and {pre} precondition(s))"
            )
            lines = [f"✗ {self.title}: {len(self.failures)} problem(s), {count}"]
            lines += [f"  - {f}" for f in self.failures]
            if self.verbose:
                print("\n".join(lines))
            raise CheckFailed("\n".join(lines)) from None
        if self.verbose:
            print(f"✓ {self.title}: all {self.passed} checks passed")
        return False

    # -- expectations -------------------------------------------------------------------
    @property
    def credit(self) -> float:
        """The share of this check's expectations met, for partial credit (``score``)."""
        return score([self])

    def stub(self, err: BaseException, name: str) -> bool:
        """Record an untouched stub (a bare ``raise NotImplementedError``), which earns nothing;
        ``True`` tells the check to stop, ``False`` that ``err`` is another error."""
        if not is_stub(err):
            return False
        self.not_implemented = True
        self.failures.append(
            f"{name} is not implemented yet (it raised NotImplementedError)"
        )
        return True

    def _record(self, ok: bool, message: str, credit: bool = True) -> bool:
        if ok:
            self.passed += 1
            self.credited += int(credit)
        else:
            self.failures.append(message)
        return ok

    def true(
        self, condition: bool, what: str, hint: str = "", credit: bool = True
    ) -> bool:
        """Expect ``condition`` to hold (``credit=False``: a precondition that earns no partial credit)."""
        return self._record(
            bool(condition), what + (f". Hint: {hint}" if hint else ""), credit
        )

    def equal(self, got: Any, expected: Any, what: str, hint: str = "") -> bool:
        """Expect ``got == expected`` (numbers, tuples, strings)."""
        msg = f"{what}: expected {expected!r}, got {got!r}" + (
            f". Hint: {hint}" if hint else ""
        )
        try:
            ok = bool(got == expected)
        # e.g. a NumPy array against a list: ambiguous truth value, so not equal
        except Exception:
            ok = False
        return self._record(ok, msg)

    def shape(
        self, got: Any, expected: Sequence[int], what: str, hint: str = ""
    ) -> bool:
        """Expect a tensor of shape ``expected``."""
        if not isinstance(got, torch.Tensor):
            return self._record(
                False,
                f"{what}: expected a tensor of shape {tuple(expected)}, "
                f"got {type(got).__name__}",
            )
        msg = f"{what}: expected shape {tuple(expected)}, got {tuple(got.shape)}"
        return self._record(
            tuple(got.shape) == tuple(expected),
            msg + (f". Hint: {hint}" if hint else ""),
        )

    def close(
        self,
        got: Any,
        expected: torch.Tensor,
        what: str,
        hint: str = "",
        atol: float = 1e-5,
        rtol: float = 1e-4,
    ) -> bool:
        """Expect a tensor equal to ``expected`` within tolerance (shape checked first; one expectation)."""
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(
            expected.shape
        ):
            return self.shape(got, expected.shape, what + " (shape)", hint)
        if same_tensor(got, expected, atol, rtol):
            return self._record(True, "")
        err = (got.detach().to(expected.dtype) - expected).abs().max().item()
        msg = (
            f"{what}: values differ from the reference (max abs difference "
            f"{beyond(err, atol)}, tolerance {atol:g})"
        )
        return self._record(False, msg + (f". Hint: {hint}" if hint else ""))


def beyond(value: float, limit: float) -> str:
    """``value`` (above ``limit``) with the digits that show it is above: a failed comparison
    never prints a number that reads as within its tolerance (``1.00002e-05``, not ``1e-05``)."""
    for digits in range(3, 18):
        text = f"{value:.{digits}g}"
        if float(text) > limit or not value > limit:
            return text
    return repr(value)


def student_raised(exc: BaseException) -> str:
    """``your code raised TYPE: message`` for an exception raised by the student's code.

    Raised in the submission's process (the autograder), the message is quoted (it is the student's
    text, not the grader's verdict: ``✓ … passed`` cannot pass for a result) and the original type
    is kept even when the grader rebuilt it as a ``StudentError``; the student's line follows.
    """
    if not hasattr(exc, "student_type"):
        return f"your code raised {type(exc).__name__}: {exc}"
    message = getattr(exc, "student_message", "")
    quoted = f": {json.dumps(message, ensure_ascii=False)}" if message else ""
    return f"your code raised {exc.student_type}{quoted}{getattr(exc, 'student_where', '') or ''}"


def diagnose(
    answers: Sequence[Tuple[Any, Any]],
    variants: Sequence[Tuple[Callable[[Any], Any], str, str]],
    same: Callable[[Any, Any], bool],
) -> Optional[Tuple[str, str]]:
    """The known mistake a submission behaves like, from its answers on every case.

    ``answers`` are ``(case, what the submission returned)``; ``variants`` are ``(wrong(case),
    looks_like, fix)`` — a deliberately wrong implementation and what to say about it. Returns
    ``(looks_like, fix)`` of the first variant that reproduces *every* answer (``same(got, value)``),
    or ``None``: a hint is given for a diagnosed mistake, never for a case number.
    """
    if not answers:
        return None
    for wrong, looks_like, fix in variants:
        try:
            if all(same(got, wrong(case)) for case, got in answers):
                return looks_like, fix
        # a variant undefined on some case cannot explain the answers
        except Exception:
            continue
    return None


def run_check(name: str, obj: Any, verbose: bool = True) -> Optional[str]:
    """Run the registered check ``name`` on ``obj``; return ``None`` if it passed, else the report."""
    import contextlib
    import io

    quiet = (
        contextlib.nullcontext()
        if verbose
        else contextlib.redirect_stdout(io.StringIO())
    )
    try:
        with quiet:
            REGISTRY[name].func(obj)
    except AssertionError as err:
        return str(err)
    return None


def same_tensor(
    got: Any, value: torch.Tensor, atol: float = 1e-4, rtol: float = 1e-4
) -> bool:
    """``got`` is a tensor of ``value``'s shape, equal within tolerance (in ``value``'s dtype)."""
    return (
        isinstance(got, torch.Tensor)
        and tuple(got.shape) == tuple(value.shape)
        and bool(
            torch.allclose(
                got.detach().to(value.dtype), value, atol=atol, rtol=rtol
            )
        )
    )


# -- shared by the hardened checks and the predict-then-measure exercises -------------------------


def is_stub(exc: BaseException) -> bool:
    """A bare ``raise NotImplementedError`` (an untouched stub), not one torch raised on a bad input."""
    return isinstance(exc, NotImplementedError) and not str(exc)


def exact_int(value: Any) -> bool:
    """``value`` is an exact integer: a Python ``int`` (not ``bool``), a NumPy integer or an integer tensor
    with one element — never a float, even a whole-valued one (``13608.0`` hides ``13607.999999999998``)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, torch.Tensor):
        return (
            value.numel() == 1
            and not value.is_floating_point()
            and not value.is_complex()
            and value.dtype != torch.bool
        )
    # NumPy scalars without importing NumPy
    kind = getattr(getattr(value, "dtype", None), "kind", None)
    return kind in ("i", "u")


def unanswered(value: Any) -> bool:
    """The student left ``...`` (or ``None``) in a prediction variable."""
    return value is Ellipsis or value is None


def close_enough(predicted: Any, measured: float, rel: float) -> bool:
    """``predicted`` is a finite number within ``rel`` (relative) of ``measured``."""
    import math

    try:
        p = float(predicted)
    except (TypeError, ValueError):
        return False
    return math.isfinite(p) and abs(p - measured) <= rel * abs(measured) + 1e-12


def as_choice(value: Any) -> str:
    """A prediction written as a name (``"Depthwise "``, ``'dw'``) normalised for comparison."""
    return str(value).strip().lower().replace("-", " ").replace("_", " ")
