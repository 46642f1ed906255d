"""The autograder: run every registered check that matches a submission, each in its own process.

``python -m tutorial_lib.checks grade SUBMISSION [--json] [--timeout S]`` (see ``__main__``):

1. :func:`load_submission` reads a ``.py`` file (one chunk of code) or an ``.ipynb`` notebook (one
   chunk per code cell, without the ``exercise-check`` cells, IPython magics and shell lines turned
   into ``pass``). Top-level calls of ``check_*`` functions are removed too, so a student's own failing
   check cannot stop the run. The top-level functions and classes it defines pick the checks.
2. The submission runs once on its own in a child process with a time limit: the "submission" row
   of the report (ran, crashed, timed out).
3. Every registered check whose ``names`` include a symbol of the submission runs in a fresh child
   process (the submission's code, then the check), with the same time limit. An exception, an exit,
   a segfault or an endless loop is a failed check, never a crashed grader.

Notebook cells run like Jupyter's "run all, continue on errors": a cell that raises is reported
and the next cells still run. A ``.py`` file runs like a script: it stops at the first error (what
it defined before that is still graded). The grader is not a security sandbox: run untrusted
submissions in a container.
"""
from __future__ import annotations

import ast
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from ._core import REGISTRY

__all__ = ["GraderError", "Submission", "load_checks", "load_submission", "grade_submission", "format_table"]

#: cell magics whose body is ordinary Python (kept, only the magic line is dropped)
PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun"}
_LINE_MAGIC = re.compile(r"^(\s*)(?:[%!]|[\w.\[\], ]+=\s*[%!])")
_DEF = re.compile(r"^(?:async\s+def|def|class)\s+([A-Za-z_]\w*)", re.M)


class GraderError(ValueError):
    """The grader itself could not run (unreadable or unsupported submission file)."""


@dataclass
class Submission:
    """A submission's code as chunks (notebook cells or one script) and its top-level symbols."""

    path: pathlib.Path
    kind: str  # "py" or "ipynb"
    chunks: List[Dict[str, str]]
    symbols: List[str] = field(default_factory=list)


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


def load_submission(path: "str | os.PathLike[str]", exercises_only: bool = False) -> Submission:
    """Read a ``.py`` or ``.ipynb`` submission; ``GraderError`` if it cannot be read.

    With ``exercises_only`` a notebook contributes only its ``exercise-stub`` and
    ``exercise-solution`` cells (fast grading of full chapters; students must then keep their
    answers in those cells).
    """
    path = pathlib.Path(path)
    if path.suffix not in {".py", ".ipynb"}:
        raise GraderError(f"grade: expected a .py or .ipynb submission, got {path.name!r}")
    try:
        text = path.read_text(encoding="utf-8")
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
    return Submission(path, path.suffix[1:], chunks, symbols)


#: seconds a child may take to start (import torch and the checks) before its time limit starts
STARTUP_LIMIT = 300.0


_LOADED: Dict[str, Any] = {}


def load_checks(path: "str | os.PathLike[str]") -> Any:
    """Import a course's own checks file (a ``.py`` that calls ``register``) once per process.

    This is how an instructor adds checks without editing ``tutorial_lib``: ``grade --checks FILE``
    loads it here and in every child process.
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


def _run_child(payload: Dict[str, Any], timeout: float) -> Dict[str, Any]:
    """Run ``_child`` on ``payload`` with a time limit; always returns a result dictionary.

    The limit counts from the moment the child has imported torch and the checks (it touches a
    "ready" file), so a slow start on a loaded machine is not charged to the submission.
    """
    with tempfile.TemporaryDirectory(prefix="grade_") as tmp:
        paths = {k: os.path.join(tmp, k) for k in ("payload.json", "result.json", "ready", "stderr.txt")}
        with open(paths["payload.json"], "w", encoding="utf-8") as fh:
            json.dump(payload, fh)
        # The child imports this very tutorial_lib, installed or not (it runs in an empty directory).
        package_root = str(pathlib.Path(__file__).resolve().parents[2])
        pythonpath = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
        env = dict(os.environ, MPLBACKEND="Agg", PYTHONHASHSEED="0", PYTHONPATH=pythonpath)
        command = [sys.executable, "-m", "tutorial_lib.checks._child",
                   paths["payload.json"], paths["result.json"], paths["ready"]]
        start, ready = time.perf_counter(), None
        with open(paths["stderr.txt"], "wb") as err:
            # A new session, so that on timeout the whole process group (with any children the
            # submission started) is killed.
            proc = subprocess.Popen(command, cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=err,
                                    start_new_session=True)
            while True:
                try:
                    proc.wait(timeout=0.05)
                    break
                except subprocess.TimeoutExpired:
                    now = time.perf_counter()
                    if ready is None and os.path.exists(paths["ready"]):
                        ready = now
                    late = (now - ready > timeout) if ready is not None else (now - start > STARTUP_LIMIT)
                    if late:
                        os.killpg(proc.pid, signal.SIGKILL)
                        proc.wait()
                        what = f"time limit of {timeout:g} s exceeded (an endless loop?)" if ready is not None \
                            else f"the grader's child process did not start within {STARTUP_LIMIT:g} s"
                        return {"status": "timeout", "errors": [], "seconds": now - (ready or start),
                                "feedback": what}
        seconds = time.perf_counter() - (ready or start)
        if not os.path.exists(paths["result.json"]):
            with open(paths["stderr.txt"], encoding="utf-8", errors="replace") as fh:
                last = fh.read().strip().splitlines()[-1:] or [""]
            return {"status": "crash", "errors": [], "seconds": seconds,
                    "feedback": f"the process died with exit code {proc.returncode} {last[0]}".rstrip()}
        with open(paths["result.json"], encoding="utf-8") as fh:
            result = json.load(fh)
        result["seconds"] = seconds
        return result


def grade_submission(path: "str | os.PathLike[str]", timeout: float = 120.0,
                     exercises_only: bool = False, only: Optional[List[str]] = None,
                     extra_checks: Sequence["str | os.PathLike[str]"] = ()) -> Dict[str, Any]:
    """Grade one submission; the report is a dictionary in Gradescope's ``results.json`` shape.

    ``report["tests"]`` has one entry per matched check (``name``, ``symbol``, ``status`` "passed" or
    "failed", ``detail`` pass/fail/error/missing/timeout/crash, ``score``, ``max_score``, ``output``);
    ``report["submission"]`` says whether the code ran; ``report["score"]`` is the total.
    ``only`` restricts grading to the named checks; ``extra_checks`` are course checks files
    (:func:`load_checks`).
    """
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise GraderError(f"grade: expected timeout a positive number of seconds, got {timeout!r}")
    extra = [str(pathlib.Path(p).resolve()) for p in extra_checks]
    for file in extra:
        load_checks(file)
    sub = load_submission(path, exercises_only=exercises_only)
    stop = sub.kind == "py"
    checks = [c for c in REGISTRY.values() if set(c.names) & set(sub.symbols)]
    if only is not None:
        unknown = sorted(set(only) - set(REGISTRY))
        if unknown:
            raise GraderError(f"grade: unknown check(s) {unknown}; registered: {sorted(REGISTRY)}")
        checks = [c for c in checks if c.name in only]
    base = {"chunks": sub.chunks, "stop_on_error": stop, "symbols": sub.symbols, "extra_checks": extra}
    run = _run_child(dict(base, check=None), timeout)
    run_status = run.get("status") or ("error" if run["errors"] else "ok")
    tests = []
    for check in checks:
        if run_status == "timeout":  # it would time out again before reaching the check
            result = {"status": "timeout", "feedback": f"the submission itself exceeded {timeout:g} s"}
        else:
            result = _run_child(dict(base, check=check.name), timeout)
        passed = result["status"] == "pass"
        tests.append({
            "name": check.name, "symbol": result.get("symbol"), "description": check.description,
            "status": "passed" if passed else "failed", "detail": result["status"],
            "score": check.points if passed else 0.0, "max_score": check.points,
            "output": result.get("feedback", ""), "seconds": round(result.get("seconds", 0.0), 2),
        })
    return {
        "submission": {"path": str(sub.path), "kind": sub.kind, "status": run_status,
                       "errors": run.get("errors", []), "feedback": run.get("feedback", ""),
                       "seconds": round(run.get("seconds", 0.0), 2), "symbols": sub.symbols},
        "score": sum(t["score"] for t in tests),
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
             "timeout": "timed out", "crash": "crashed"}.get(sub["status"], sub["status"])
    lines = [head + f" ({sub['seconds']:.1f} s)"]
    lines += [f"  {e['label']}: {e['error']}" for e in sub["errors"]]
    if sub.get("feedback") and sub["status"] in {"timeout", "crash"}:
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
    if verbose:
        for t in report["tests"]:
            if t["output"]:
                lines += ["", f"[{t['name']}]", t["output"]]
    return "\n".join(lines)
