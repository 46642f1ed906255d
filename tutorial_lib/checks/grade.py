"""The autograder: grade a submission's exercises without ever importing the submission.

``python -m tutorial_lib.checks grade SUBMISSION [--assignment FILE] [--json]`` (see ``__main__``):

1. :func:`load_submission` reads a ``.py`` file (one chunk of code) or an ``.ipynb`` notebook (one
   chunk per code cell, without the ``exercise-check`` cells, IPython magics and shell lines turned
   into ``pass``). Top-level calls of ``check_*`` functions are removed too, so a student's own failing
   check cannot stop the run.
2. The exercises come from an assignment (:mod:`tutorial_lib.checks.assignment`: checks and points,
   a fixed total), from ``only`` (every named check), or, without either, from the names the
   submission defines (quick feedback; the total then depends on the submission).
3. The submission runs in its own process (``tutorial_lib.checks._child``, a clean environment,
   a temporary working folder with its own copy of ``tutorial_lib``) with a time limit; the
   grader kills whatever that process forked (Linux: the grader is a child subreaper). The checks run *here*: they generate the
   inputs and compute the reference results in this process, send the inputs to the submission's
   process, and compare what comes back (``tutorial_lib.checks._remote``). Replacing a check,
   patching ``tutorial_lib`` or reading a seed inside the submission changes nothing here.
4. An exercise scores 0 when its object uses ``tutorial_lib``'s own implementation of the component
   (found in the source by ``tutorial_lib.checks.forbidden``, copied or not, and by tripwires in
   the submission's process), and every exercise scores 0, without running anything, when the
   submission contains an evasion construct (``forbidden.evasions``); otherwise ``points`` when
   every expectation holds, and ``points × passed / total`` expectations when some fail (a stub
   scores 0).

Notebook cells run like Jupyter's "run all, continue on errors": a cell that raises is reported
and the next cells still run. A ``.py`` file runs like a script: it stops at the first error (what
it defined before that is still graded). The grader is not a security sandbox: a submission can
read files the grading user can read; run untrusted submissions in a container.
"""
from __future__ import annotations

import ast
import contextlib
import hashlib
import io
import json
import os
import pathlib
import re
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from ._core import REGISTRY, CheckFailed
from ._remote import Connection, SubmissionCrashed, SubmissionTimeout, guarded_hashes, package_hashes, stand_in
from .assignment import Assignment, Exercise, GraderError, load_assignment
from .forbidden import copied_from_library, evasions, forbidden_uses

__all__ = ["GraderError", "Submission", "load_checks", "load_submission", "grade_submission", "format_table"]

#: cell magics whose body is ordinary Python (kept, only the magic line is dropped)
PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun"}
_LINE_MAGIC = re.compile(r"^(\s*)(?:[%!]|[\w.\[\], ]+=\s*[%!])")
_DEF = re.compile(r"^(?:async\s+def|def|class)\s+([A-Za-z_]\w*)", re.M)


@dataclass
class Submission:
    """A submission's code as chunks (notebook cells or one script) and its top-level symbols."""

    path: pathlib.Path
    kind: str  # "py" or "ipynb"
    chunks: List[Dict[str, str]]
    symbols: List[str] = field(default_factory=list)
    sha256: str = ""  # of the file's bytes as read (once, before anything ran)


def strip_magics(source: str) -> str:
    """Turn IPython magics and shell lines into ``pass`` (same indentation, same line numbers)."""
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        magic = lines[0].split()[0][2:]
        if magic not in PYTHON_CELL_MAGICS:
            return ""
        lines[0] = ""
    out = []
    for line in lines:
        match = _LINE_MAGIC.match(line)
        out.append(f"{match.group(1)}pass  # removed by the grader" if match else line)
    return "\n".join(out) + ("\n" if out else "")


def _is_check_call(node: ast.stmt) -> bool:
    if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)):
        return False
    func = node.value.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    return name.startswith("check_")


def _prepare(source: str) -> tuple:
    """Source with top-level ``check_*(...)`` calls replaced by ``pass``, and its top-level symbols."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # graded anyway: the child reports the SyntaxError, symbols come from a regex
        return source, _DEF.findall(source)
    lines = source.splitlines()
    symbols: List[str] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            symbols.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            symbols += [t.id for t in targets if isinstance(t, ast.Name)]
        elif _is_check_call(node) and node.col_offset == 0:
            first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
            lines[first:last + 1] = ["pass  # check call removed by the grader"] + [""] * (last - first)
    return "\n".join(lines) + "\n", symbols


def load_submission(path: "str | os.PathLike[str]", exercises_only: bool = False,
                    content: Optional[bytes] = None) -> Submission:
    """Read a ``.py`` or ``.ipynb`` submission; ``GraderError`` if it cannot be read.

    ``content``: the file's bytes, read earlier (the gradebook reads every submission before it
    runs any, so that no submission can change a classmate's file); by default the file is read now.

    With ``exercises_only`` a notebook contributes only its ``exercise-stub`` and
    ``exercise-solution`` cells (fast grading of full chapters; students must then keep their
    answers in those cells).
    """
    path = pathlib.Path(path)
    if path.suffix not in {".py", ".ipynb"}:
        raise GraderError(f"grade: expected a .py or .ipynb submission, got {path.name!r}")
    try:
        data = path.read_bytes() if content is None else bytes(content)
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise GraderError(f"grade: cannot read {path}: {err}") from None
    raw: List[Dict[str, str]] = []
    if path.suffix == ".py":
        raw.append({"label": path.name, "source": text})
    else:
        try:
            cells = json.loads(text)["cells"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise GraderError(f"grade: {path} is not a Jupyter notebook ({err})") from None
        number = 0
        for cell in cells:
            if cell.get("cell_type") != "code":
                continue
            number += 1
            tags = set(cell.get("metadata", {}).get("tags", []))
            if "exercise-check" in tags:
                continue
            if exercises_only and not tags & {"exercise-stub", "exercise-solution"}:
                continue
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else source
            raw.append({"label": f"code cell {number}", "source": strip_magics(source)})
    chunks, symbols = [], []
    for chunk in raw:
        source, found = _prepare(chunk["source"])
        chunks.append({"label": chunk["label"], "source": source})
        symbols += [s for s in found if s not in symbols]
    return Submission(path, path.suffix[1:], chunks, symbols, hashlib.sha256(data).hexdigest())


_LOADED: Dict[str, Any] = {}


def load_checks(path: "str | os.PathLike[str]") -> Any:
    """Import a course's own checks file (a ``.py`` that calls ``register``) once per process.

    This is how an instructor adds checks without editing ``tutorial_lib``: ``grade --checks FILE``
    loads it here (the checks run in the grader's process; the submission's process never sees them).
    """
    path = pathlib.Path(path).resolve()
    if str(path) in _LOADED:
        return _LOADED[str(path)]
    if path.suffix != ".py" or not path.is_file():
        raise GraderError(f"grade: expected --checks to name an existing .py file, got {path}")
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"_course_checks_{len(_LOADED)}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    except Exception as err:
        raise GraderError(f"grade: the checks file {path} failed to import: {type(err).__name__}: {err}") from None
    _LOADED[str(path)] = module
    return module


def _exercises(sub: Submission, assignment: Optional[Assignment], only: Optional[List[str]]) -> List[Exercise]:
    if assignment is not None:
        return list(assignment.exercises)
    if only is not None:
        unknown = sorted(set(only) - set(REGISTRY))
        if unknown:
            raise GraderError(f"grade: unknown check(s) {unknown}; registered: {sorted(REGISTRY)}")
        return [Exercise(n, REGISTRY[n].points) for n in only]
    return [Exercise(c.name, c.points) for c in REGISTRY.values() if set(c.names) & set(sub.symbols)]


def _run_submission(conn: Connection, sub: Submission, forbid: List[str], timeout: float) -> Dict[str, Any]:
    start = time.perf_counter()
    try:
        conn.start()
        conn.deadline = time.monotonic() + timeout
        run = conn.request(op="run", chunks=sub.chunks, stop_on_error=sub.kind == "py", symbols=sub.symbols,
                           forbid=forbid)
    except SubmissionTimeout:
        return {"status": "timeout", "errors": [], "defined": [], "seconds": timeout,
                "feedback": f"the submission itself exceeded the time limit of {timeout:g} s (an endless loop?)"}
    except SubmissionCrashed as err:
        return {"status": "crash", "errors": [], "defined": [], "seconds": time.perf_counter() - start,
                "feedback": f"the submission's process died while running it: {err}"}
    run["status"] = "error" if run["errors"] else "ok"
    run["seconds"] = time.perf_counter() - start
    return run


def _grade_one(conn: Connection, sub: Submission, run: Dict[str, Any], exercise: Exercise,
               timeout: float) -> Dict[str, Any]:
    check = REGISTRY[exercise.check]
    entry: Dict[str, Any] = {"name": check.name, "symbol": None, "description": check.description,
                             "max_score": exercise.points, "score": 0.0, "seconds": 0.0}

    def done(detail: str, output: str, score: float = 0.0) -> Dict[str, Any]:
        entry.update(detail=detail, output=output, score=round(score, 2),
                     status="passed" if detail == "pass" else "failed")
        return entry

    if run["status"] in {"timeout", "crash", "forbidden"}:
        return done(run["status"], run["feedback"])
    symbol = next((n for n in check.names if n in run["defined"]), None)
    entry["symbol"] = symbol
    if symbol is None:
        why = f"; the submission stopped early: {run['errors'][0]['error']}" if run["errors"] else \
            " (deleted or renamed? keep the name and signature of the stub)"
        return done("missing", f"{' or '.join(check.names)} is not defined{why}")
    static = forbidden_uses(sub, symbol, check.forbid)
    if static:
        return done("forbidden", _forbidden_message(symbol, static))
    copied = copied_from_library(sub, symbol, check.forbid)
    if copied:
        return done("forbidden", f"0 points: your {symbol} copies the code of {' and '.join(copied)} "
                                 f"(tutorial_lib's own implementation). Write it yourself.")
    from . import _core

    conn.used = []
    feedback = io.StringIO()
    _core.LOG = []
    start = time.perf_counter()
    try:
        conn.deadline = time.monotonic() + timeout
        with contextlib.redirect_stdout(feedback):
            check.func(stand_in(conn, symbol, list(check.forbid)))
        outcome, note = "pass", ""
    except CheckFailed:
        outcome, note = "fail", ""
    except SubmissionTimeout:
        outcome, note = "timeout", f"time limit of {timeout:g} s exceeded (an endless loop?)"
    except SubmissionCrashed as err:
        outcome, note = "crash", str(err)
    except Exception as err:  # outside a Checker block: the check could not use the submission's object
        where = getattr(err, "student_where", None)
        note = (_core.student_raised(err) if where is not None
                else f"the check could not use your {symbol} ({type(err).__name__}: {err})")
        outcome = "error"
    finally:
        checkers, _core.LOG = _core.LOG, None
        entry["seconds"] = round(time.perf_counter() - start, 2)
    text = (feedback.getvalue() + ("\n" + note if note else "")).strip()
    if conn.used:
        return done("forbidden", _forbidden_message(symbol, conn.used))
    if outcome == "pass":
        return done("pass", text, exercise.points)
    credited = sum(c.credited for c in checkers)
    units = credited + sum(len(c.failures) for c in checkers)
    stub = any(c.not_implemented for c in checkers)
    share = 0.0 if stub or outcome in {"timeout", "crash"} or not units else credited / units
    return done(outcome, text, exercise.points * share)


def _forbidden_message(symbol: str, paths: Sequence[str]) -> str:
    return (f"0 points: your {symbol} uses {' and '.join(paths)} (tutorial_lib's own implementation of what "
            f"this exercise asks you to write). Write it yourself with torch; helpers the exercise names are fine.")


def _evasion_message(found: Sequence[str]) -> str:
    more = f" (and {len(found) - 1} more: {'; '.join(found[1:4])}{'…' if len(found) > 4 else ''})" \
        if len(found) > 1 else ""
    return (f"0 points for every exercise: the submission uses {found[0]}{more}, a construct that reaches "
            f"around the grader or into tutorial_lib's implementation. Remove it and resubmit.")


def grade_submission(path: "str | os.PathLike[str]", timeout: float = 120.0,
                     exercises_only: bool = False, only: Optional[List[str]] = None,
                     extra_checks: Sequence["str | os.PathLike[str]"] = (),
                     assignment: "Assignment | str | os.PathLike[str] | None" = None,
                     run_timeout: Optional[float] = None, content: Optional[bytes] = None) -> Dict[str, Any]:
    """Grade one submission; the report is a dictionary in Gradescope's ``results.json`` shape.

    ``report["tests"]`` has one entry per exercise (``name``, ``symbol``, ``status`` "passed" or
    "failed", ``detail`` pass/fail/error/missing/forbidden/timeout/crash, ``score``, ``max_score``,
    ``output``); ``report["submission"]`` says whether the code ran; ``report["score"]`` is the total.
    ``assignment`` (an ``Assignment`` or its TOML file) fixes the exercises, points, time
    limit and private seed; ``only`` grades the named checks; ``extra_checks`` are course checks files.
    ``timeout`` is per exercise; ``run_timeout`` (default: ``timeout``, or the assignment's
    ``run_timeout``) is for running the submission itself (a whole chapter notebook takes longer).
    ``content``: the submission's bytes, read earlier (default: read the file now).

    A submission that uses an evasion construct (``tutorial_lib.checks.forbidden.evasions``) is
    not run: every exercise scores 0, detail ``forbidden``. After the submission the grader's checks
    package and the library snapshot its processes copy are hashed again: ``GraderError`` names a
    file that changed; another ``tutorial_lib`` file that changed meanwhile is listed in
    ``report["library_changed"]`` (an edit of yours, or the submission's doing: check with git).
    """
    for name, value in (("timeout", timeout), ("run_timeout", run_timeout)):
        if value is None and name == "run_timeout":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise GraderError(f"grade: expected {name} a positive number of seconds, got {value!r}")
    for file in extra_checks:
        load_checks(file)
    if assignment is not None and not isinstance(assignment, Assignment):
        assignment = load_assignment(assignment)
    if assignment is not None:
        timeout = assignment.timeout or timeout
        run_timeout = run_timeout or assignment.run_timeout
    run_timeout = run_timeout or timeout
    sub = load_submission(path, exercises_only=exercises_only, content=content)
    exercises = _exercises(sub, assignment, only)
    forbid = sorted({f for e in exercises for f in REGISTRY[e.check].forbid})
    from . import _core

    found = evasions(sub)
    before, before_live = guarded_hashes(), package_hashes()
    _core.set_private_seed(assignment.private_seed if assignment is not None else None)
    conn = Connection()
    tests = []
    try:
        if found:
            run = {"status": "forbidden", "errors": [], "defined": [], "seconds": 0.0,
                   "feedback": _evasion_message(found), "evasions": found}
        else:
            run = _run_submission(conn, sub, forbid, run_timeout)
        for exercise in exercises:
            if run["status"] not in {"timeout", "forbidden"} and not conn.alive:  # killed by a check: afresh
                again = _run_submission(conn, sub, forbid, run_timeout)
                if again["status"] in {"timeout", "crash"}:
                    run = dict(run, status=again["status"], feedback=again["feedback"], defined=[])
            tests.append(_grade_one(conn, sub, run, exercise, timeout))
    finally:
        conn.close()
        _core.set_private_seed(None)
    after, after_live = guarded_hashes(), package_hashes()
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    if changed:
        raise GraderError(f"grade: the grader's own tutorial_lib changed while {sub.path.name} was graded: "
                          f"{', '.join(changed)} (restore it, e.g. with git, and grade again)")
    # not used by this grading (the submissions' processes copy the snapshot): reported, not fatal
    live = sorted(k for k in set(before_live) | set(after_live) if before_live.get(k) != after_live.get(k))
    return {
        "submission": {"path": str(sub.path), "kind": sub.kind, "status": run["status"], "sha256": sub.sha256,
                       "errors": run.get("errors", []), "feedback": run.get("feedback", ""),
                       "seconds": round(run.get("seconds", 0.0), 2), "symbols": sub.symbols},
        "assignment": assignment.title if assignment is not None else None,
        "fixed_total": assignment is not None or only is not None,
        "library_changed": live,
        "score": round(sum(t["score"] for t in tests), 2),
        "max_score": sum(t["max_score"] for t in tests),
        "tests": tests,
    }


def _first_line(text: str) -> str:
    """The most useful line of a check's feedback: its first listed problem, else its first line."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    problems = [ln[2:] for ln in lines if ln.startswith("- ")]
    return (problems or lines or [""])[0]


def format_table(report: Dict[str, Any], width: int = 100, verbose: bool = False) -> str:
    """The report as a plain-text score table (and, with ``verbose``, each check's full feedback)."""
    sub = report["submission"]
    head = f"Submission {sub['path']}: "
    head += {"ok": "ran without errors", "error": f"{len(sub['errors'])} error(s) while running",
             "timeout": "timed out", "crash": "crashed",
             "forbidden": "not run (an evasion construct)"}.get(sub["status"], sub["status"])
    lines = [head + f" ({sub['seconds']:.1f} s)"]
    lines += [f"  {e['label']}: {e['error']}" for e in sub["errors"]]
    if sub.get("feedback") and sub["status"] in {"timeout", "crash", "forbidden"}:
        lines.append(f"  {sub['feedback']}")
    if not report["tests"]:
        lines.append("No function or class of the submission matches a registered check.")
    else:
        name_w = max(len("check"), *(len(t["name"]) for t in report["tests"]))
        lines.append(f"{'check':<{name_w}}  {'status':<7}  {'points':>7}  feedback")
        lines.append("-" * min(width, name_w + 30))
        for t in report["tests"]:
            points = f"{t['score']:g}/{t['max_score']:g}"
            room = max(width - name_w - 22, 20)
            note = _first_line(t["output"])
            note = note if len(note) <= room else note[:room - 1] + "…"
            lines.append(f"{t['name']:<{name_w}}  {t['detail']:<7}  {points:>7}  {note}")
        total = f"{report['score']:g}/{report['max_score']:g}"
        lines.append(f"{'total':<{name_w}}  {'':<7}  {total:>7}")
    if report.get("library_changed"):
        lines.append(f"warning: tutorial_lib files changed during grading: {', '.join(report['library_changed'])}")
    if verbose:
        for t in report["tests"]:
            if t["output"]:
                lines += ["", f"[{t['name']}]", t["output"]]
    return "\n".join(lines)
