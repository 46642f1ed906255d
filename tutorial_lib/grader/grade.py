"""Grade one submission: its code runs in a sandbox, the checks run here, against the real library.

1. ``submission.load_submission`` reads the code (never imported here).
2. The exercises come from an assignment (checks, points, a fixed total, time limits, a budget,
   limits, a private seed), from ``only``, or from the names the submission defines.
3. A :class:`Grader` builds the student edition of ``tutorial_lib`` once (the assignment's graded
   components removed, :mod:`.edition`) and checks that the sandbox works (:func:`.sandbox.probe`);
   without one it refuses (``SandboxError``) unless ``sandbox=False``.
4. Per submission: a sandbox runs the code (notebook cells like Jupyter's "run all, continue on
   errors"; a script stops at its first error), then each exercise's check runs *here* on a
   stand-in (:mod:`.remote`): the check draws its cases (from the private seed), computes the
   reference with the real library, sends the inputs, compares the answers. An exercise scores its
   points when every expectation holds, a share when some fail (``checks._core.score``:
   nothing for a single pass, which a constant answer can get), nothing for a stub, a time-out or
   a crash. Code similar to a graded component's source is flagged (:mod:`.similarity`).
   The student has one time budget for everything; when it runs out the sandbox is killed and the
   exercises not graded yet score 0 ("timeout").
"""

from __future__ import annotations

import contextlib
import io
import os
import pathlib
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence

from ..checks import REGISTRY, _core
from ..checks._core import CheckFailed
from .assignment import Assignment, Exercise, GraderError, load_assignment
from .edition import build_edition
from .remote import stand_in
from .sandbox import (
    DEFAULT_LIMITS,
    Sandbox,
    SubmissionCrashed,
    SubmissionTimeout,
    probe,
)
from .similarity import similar_components
from .submission import Submission, load_submission

__all__ = [
    "Grader",
    "grade_submission",
    "load_checks",
    "format_table",
    "NO_SANDBOX_NOTE",
]

NO_SANDBOX_NOTE = "graded WITHOUT a sandbox (--no-sandbox): the submission ran as the grading user"
_LOADED: Dict[str, Any] = {}


def load_checks(path: "str | os.PathLike[str]") -> Any:
    """Import a course's own checks file (a ``.py`` that calls ``register``) once, in the grader only."""
    path = pathlib.Path(path).resolve()
    if str(path) in _LOADED:
        return _LOADED[str(path)]
    if path.suffix != ".py" or not path.is_file():
        raise GraderError(
            f"grade: expected --checks to name an existing .py file, got {path}"
        )
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        f"_course_checks_{len(_LOADED)}", path
    )
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    except Exception as err:
        raise GraderError(
            f"grade: the checks file {path} failed to import: {type(err).__name__}: {err}"
        ) from None
    _LOADED[str(path)] = module
    return module


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise GraderError(
            f"grade: expected {name} a positive number of seconds, got {value!r}"
        )
    return float(value)


class Grader:
    """The student edition, the sandbox check and the limits of one grading run (close it after)."""

    def __init__(
        self,
        exercises: Sequence[Exercise],
        assignment: Optional[Assignment] = None,
        timeout: float = 120.0,
        run_timeout: Optional[float] = None,
        sandbox: bool = True,
        max_reply: Optional[int] = None,
    ) -> None:
        a = assignment
        self.exercises, self.assignment, self.sandbox = list(exercises), a, sandbox
        self.timeout = _positive("timeout", (a and a.timeout) or timeout)
        self.run_timeout = _positive(
            "run_timeout", run_timeout or (a and a.run_timeout) or self.timeout
        )
        # by default room for a fresh run before each exercise (a crash or time-out kills the sandbox)
        self.budget = (a and a.budget) or (self.run_timeout + self.timeout) * max(
            1, len(self.exercises)
        )
        self.limits = dict(DEFAULT_LIMITS)
        for key in ("memory_mb", "processes"):
            if a is not None and getattr(a, key):
                self.limits[key] = int(getattr(a, key))
        self.max_reply = int(
            max_reply or os.environ.get("TUTORIAL_LIB_MAX_REPLY", 64 << 20)
        )
        self.forbid = sorted(
            {f for e in self.exercises for f in REGISTRY[e.check].forbid}
        )
        self._tmp = tempfile.TemporaryDirectory(prefix="grader_edition_")
        os.chmod(self._tmp.name, 0o755)
        try:
            build_edition(self.forbid, self._tmp.name)
            if sandbox:
                probe(self._tmp.name)
        except BaseException:
            self._tmp.cleanup()
            raise

    def close(self) -> None:
        self._tmp.cleanup()

    def __enter__(self) -> "Grader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- one submission ---------------------------------------------------------------------------
    def grade(self, sub: Submission) -> Dict[str, Any]:
        """The report of one submission, in Gradescope's ``results.json`` shape (plus details)."""
        start = time.monotonic()
        box = Sandbox(
            self._tmp.name, self.limits, self.budget, self.sandbox, self.max_reply
        )
        _core.set_private_seed(
            self.assignment.private_seed if self.assignment is not None else None
        )
        tests = []
        try:
            run = self._run(box, sub)
            for exercise in self.exercises:
                # killed by a check: afresh
                if run["status"] in {"ok", "error"} and not box.alive:
                    again = self._run(box, sub)
                    if again["status"] in {"timeout", "crash"}:
                        run = dict(
                            run, status=again["status"], feedback=again["feedback"]
                        )
                tests.append(self._one(box, run, exercise))
        finally:
            box.close()
            _core.set_private_seed(None)
        similar = similar_components(
            "\n".join(c["source"] for c in sub.chunks), self.forbid
        )
        return {
            "submission": {
                "path": str(sub.path),
                "kind": sub.kind,
                "status": run["status"],
                "sha256": sub.sha256,
                "errors": run.get("errors", []),
                "feedback": run.get("feedback", ""),
                "seconds": round(time.monotonic() - start, 2),
                "symbols": sub.symbols,
            },
            "assignment": self.assignment.title
            if self.assignment is not None
            else None,
            "sandbox": self.sandbox,
            "similarity": similar,
            "score": round(sum(t["score"] for t in tests), 2),
            "max_score": sum(t["max_score"] for t in tests),
            "tests": tests,
        }

    def _out_of_time(self, box: Sandbox, limit: float, what: str) -> str:
        if time.monotonic() >= box.budget_end:
            return (
                f"the time budget of {self.budget:g} s for this submission ran out"
            )
        return f"{what} exceeded the time limit of {limit:g} s (an endless loop?)"

    def _run(self, box: Sandbox, sub: Submission) -> Dict[str, Any]:
        def failed(status: str, feedback: str) -> Dict[str, Any]:
            return {
                "status": status,
                "errors": [],
                "defined": [],
                "feedback": feedback,
            }

        try:
            box.start()
            value = box.request(
                self.run_timeout,
                op="run",
                chunks=sub.chunks,
                stop_on_error=sub.kind == "py",
                symbols=sub.symbols,
            )
        except SubmissionTimeout:
            what = "the submission itself"
            return failed("timeout", self._out_of_time(box, self.run_timeout, what))
        except SubmissionCrashed as err:
            why = f"the submission's process died while running it: {err}"
            return failed("crash", why)
        # a reply of the wrong shape, or the student's exception from "run"
        except Exception as err:
            box.close()
            why = f"the submission's process answered wrongly: {type(err).__name__}"
            return failed("crash", why)
        value = value if isinstance(value, dict) else {}
        errors = [
            {
                "label": str(e.get("label", ""))[:80],
                "error": str(e.get("error", ""))[:500],
            }
            for e in (
                value.get("errors") if isinstance(value.get("errors"), list) else []
            )[:20]
            if isinstance(e, dict)
        ]
        defined = (
            value.get("defined") if isinstance(value.get("defined"), list) else []
        )
        return {
            "status": "error" if errors else "ok",
            "errors": errors,
            "defined": [n for n in sub.symbols if n in defined],
        }

    def _one(
        self, box: Sandbox, run: Dict[str, Any], exercise: Exercise
    ) -> Dict[str, Any]:
        check = REGISTRY[exercise.check]
        entry: Dict[str, Any] = {
            "name": check.name,
            "symbol": None,
            "description": check.description,
            "max_score": exercise.points,
            "score": 0.0,
            "seconds": 0.0,
        }

        def done(detail: str, output: str, score: float = 0.0) -> Dict[str, Any]:
            entry.update(
                detail=detail,
                output=output,
                score=round(score, 2),
                status="passed" if detail == "pass" else "failed",
            )
            return entry

        if run["status"] in {"timeout", "crash"}:
            return done(run["status"], run["feedback"])
        symbol = next((n for n in check.names if n in run["defined"]), None)
        entry["symbol"] = symbol
        if symbol is None:
            why = (
                f"; the submission stopped early: {run['errors'][0]['error']}"
                if run["errors"]
                else " (deleted or renamed? keep the name and signature of the stub)"
            )
            return done(
                "missing", f"{' or '.join(check.names)} is not defined{why}"
            )
        if time.monotonic() >= box.budget_end:
            return done(
                "timeout",
                f"the time budget of {self.budget:g} s for this submission ran out",
            )
        feedback = io.StringIO()
        _core.LOG = []
        start = time.perf_counter()
        try:
            with contextlib.redirect_stdout(feedback):
                check.func(stand_in(box, symbol, self.timeout))
            outcome, note = "pass", ""
        except CheckFailed:
            outcome, note = "fail", ""
        except SubmissionTimeout:
            outcome, note = (
                "timeout",
                self._out_of_time(box, self.timeout, "this exercise"),
            )
        except SubmissionCrashed as err:
            outcome, note = "crash", str(err)
        except Exception as err:  # outside a Checker block: the check could not use the submission's object
            note = (
                _core.student_raised(err)
                if getattr(err, "student_where", None) is not None
                else f"the check could not use your {symbol} ({type(err).__name__}: {err})"
            )
            outcome = "error"
        finally:
            checkers, _core.LOG = _core.LOG, None
            entry["seconds"] = round(time.perf_counter() - start, 2)
        text = (feedback.getvalue() + ("\n" + note if note else "")).strip()
        if outcome == "pass":
            return done("pass", text, exercise.points)
        share = 0.0 if outcome in {"timeout", "crash"} else _core.score(checkers)
        return done(outcome, text, exercise.points * share)


def ungraded(
    assignment: Assignment,
    path: "str | os.PathLike[str]",
    status: str,
    why: str,
    sha256: str = "",
    sandbox: bool = True,
) -> Dict[str, Any]:
    """The report of a submission that could not be graded (``status``): every exercise 0, ``why``."""
    tests = [
        {
            "name": e.check,
            "symbol": None,
            "description": REGISTRY[e.check].description,
            "max_score": e.points,
            "score": 0.0,
            "seconds": 0.0,
            "detail": status,
            "output": why,
            "status": "failed",
        }
        for e in assignment.exercises
    ]
    return {
        "submission": {
            "path": str(path),
            "kind": pathlib.Path(path).suffix[1:],
            "status": status,
            "sha256": sha256,
            "errors": [],
            "feedback": why,
            "seconds": 0.0,
            "symbols": [],
        },
        "assignment": assignment.title,
        "sandbox": sandbox,
        "similarity": {},
        "score": 0.0,
        "max_score": assignment.max_score,
        "tests": tests,
    }


def exercises_for(
    sub: Optional[Submission],
    assignment: Optional[Assignment],
    only: Optional[List[str]],
) -> List[Exercise]:
    if assignment is not None:
        return list(assignment.exercises)
    if only is not None:
        unknown = sorted(set(only) - set(REGISTRY))
        if unknown:
            raise GraderError(
                f"grade: unknown check(s) {unknown}; registered: {sorted(REGISTRY)}"
            )
        return [Exercise(n, REGISTRY[n].points) for n in only]
    symbols = set(sub.symbols) if sub is not None else set()
    return [
        Exercise(c.name, c.points)
        for c in REGISTRY.values()
        if set(c.names) & symbols
    ]


def grade_submission(
    path: "str | os.PathLike[str]",
    timeout: float = 120.0,
    exercises_only: bool = False,
    only: Optional[List[str]] = None,
    extra_checks: Sequence["str | os.PathLike[str]"] = (),
    assignment: "Assignment | str | os.PathLike[str] | None" = None,
    run_timeout: Optional[float] = None,
    sandbox: bool = True,
) -> Dict[str, Any]:
    """Grade one file (see the module docstring); ``GraderError`` if it cannot be read or graded,
    ``SandboxError`` if there is no working sandbox and ``sandbox`` is true."""
    for file in extra_checks:
        load_checks(file)
    if assignment is not None and not isinstance(assignment, Assignment):
        assignment = load_assignment(assignment)
    try:
        sub = load_submission(path, exercises_only=exercises_only)
    except GraderError as err:
        raise GraderError(f"grade: {err}") from None
    with Grader(
        exercises_for(sub, assignment, only),
        assignment,
        timeout,
        run_timeout,
        sandbox,
    ) as grader:
        report = grader.grade(sub)
    report["fixed_total"] = assignment is not None or only is not None
    return report


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    problems = [ln[2:] for ln in lines if ln.startswith("- ")]
    return (problems or lines or [""])[0]


def format_table(
    report: Dict[str, Any], width: int = 100, verbose: bool = False
) -> str:
    """The report as a plain-text score table (and, with ``verbose``, each check's full feedback)."""
    sub = report["submission"]
    head = f"Submission {sub['path']}: " + {
        "ok": "ran without errors",
        "error": f"{len(sub['errors'])} error(s) while running",
        "timeout": "timed out",
        "crash": "crashed",
    }.get(sub["status"], sub["status"])
    lines = [head + f" ({sub['seconds']:.1f} s)"]
    if not report.get("sandbox", True):
        lines.append(f"  {NO_SANDBOX_NOTE}")
    lines += [f"  {e['label']}: {e['error']}" for e in sub["errors"]]
    if sub.get("feedback") and sub["status"] in {"timeout", "crash"}:
        lines.append(f"  {sub['feedback']}")
    if not report["tests"]:
        lines.append(
            "No function or class of the submission matches a registered check."
        )
    else:
        name_w = max(len("check"), *(len(t["name"]) for t in report["tests"]))
        lines.append(f"{'check':<{name_w}}  {'status':<7}  {'points':>7}  feedback")
        lines.append("-" * min(width, name_w + 30))
        for t in report["tests"]:
            room = max(width - name_w - 22, 20)
            note = _first_line(t["output"])
            note = note if len(note) <= room else note[: room - 1] + "…"
            points = f"{t['score']:g}/{t['max_score']:g}"
            lines.append(
                f"{t['name']:<{name_w}}  {t['detail']:<7}  {points:>7}  {note}"
            )
        total = f"{report['score']:g}/{report['max_score']:g}"
        lines.append(f"{'total':<{name_w}}  {'':<7}  {total:>7}")
    for path, share in report.get("similarity", {}).items():
        lines.append(
            f"note: {share:.0%} of the fingerprints of {path} are in this submission (copied?)"
        )
    if verbose:
        for t in report["tests"]:
            if t["output"]:
                lines += ["", f"[{t['name']}]", t["output"]]
    return "\n".join(lines)
