"""Grade a folder of submissions into a CSV gradebook and one feedback file per student.

    python -m tutorial_lib.checks gradebook SUBMISSIONS/ --assignment A.toml --out OUT/

writes ``OUT/gradebook.csv`` (one row per submission: a column per exercise, the total, the
maximum and notes), ``OUT/feedback/<student>.md`` (what each exercise found, with hints) and
``OUT/results/<student>.json`` (Gradescope's ``results.json`` shape, for an LMS import). The
student is the file name without its extension; every ``.py`` and ``.ipynb`` directly inside
the folder is a submission.

Every submission file is read into memory (and its SHA-256 recorded in the gradebook) before any
of them runs, so a submission cannot change a classmate's file. Each output file is written to a
temporary file and renamed into place, after every submission (a crash loses nothing) and once
more at the end; the output folder and its ``feedback``/``results`` folders must not be symbolic
links. On Linux, whatever a submission's process forked is killed after it (see ``_remote``).
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import pathlib
import tempfile
from typing import Any, Callable, Dict, List, Optional

from .assignment import Assignment, GraderError, load_assignment

__all__ = ["grade_folder", "feedback_markdown"]

_DETAIL = {"pass": "passed", "fail": "some cases failed", "error": "the check could not use your code",
           "missing": "not found", "forbidden": "uses the library's implementation (or a construct the grader refuses)",
           "timeout": "time limit exceeded", "crash": "the process died"}


def _student(path: pathlib.Path, taken: Dict[str, pathlib.Path]) -> str:
    name = path.stem if path.stem not in taken else f"{path.stem}_{path.suffix[1:]}"
    taken[name] = path
    return name


def feedback_markdown(student: str, report: Dict[str, Any]) -> str:
    """The feedback file of one student: total, one line per exercise, then each exercise's details."""
    sub = report["submission"]
    lines = [f"# Feedback for {student}", "",
             f"**Total: {report['score']:g} / {report['max_score']:g}**"
             + (f" ({report['assignment']})" if report.get("assignment") else ""), ""]
    if sub["status"] != "ok":
        state = {"error": "raised errors while running", "timeout": "did not finish in time",
                 "crash": "made Python exit", "forbidden": "was not run"}.get(sub["status"], sub["status"])
        lines.append(f"Your submission {state}:")
        lines += [f"- {e['label']}: `{e['error']}`" for e in sub["errors"]]
        if sub.get("feedback"):
            lines.append(f"- {sub['feedback']}")
        lines.append("")
    lines += ["| Exercise | Points | Result |", "|---|---|---|"]
    for t in report["tests"]:
        lines.append(f"| `{t['name']}` | {t['score']:g} / {t['max_score']:g} | {_DETAIL.get(t['detail'], t['detail'])} |")
    for t in report["tests"]:
        if t["detail"] != "pass" and t["output"]:
            lines += ["", f"## {t['name']}", "", "```text", t["output"].strip(), "```"]
    return "\n".join(lines) + "\n"


def _write(path: pathlib.Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a temporary file renamed over it; never through a link)."""
    if path.is_symlink():
        path.unlink()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _folder(path: pathlib.Path) -> pathlib.Path:
    if path.is_symlink():
        raise GraderError(f"gradebook: expected the output folder {path} to be a real folder, got a symbolic link")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _csv(rows: List[Dict[str, Any]], fields: List[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def grade_folder(folder: "str | os.PathLike[str]", assignment: "Assignment | str | os.PathLike[str]",
                 out: "str | os.PathLike[str]", timeout: float = 120.0,
                 progress: Optional[Callable[[str, Dict[str, Any]], None]] = None,
                 exercises_only: bool = False, run_timeout: Optional[float] = None) -> List[Dict[str, Any]]:
    """Grade every ``.py``/``.ipynb`` in ``folder``; write the gradebook, feedback and results; return the rows.

    ``exercises_only`` and ``run_timeout`` are passed to :func:`~tutorial_lib.checks.grade.grade_submission`.
    """
    from .grade import grade_submission

    folder, out = pathlib.Path(folder), pathlib.Path(out)
    if not folder.is_dir():
        raise GraderError(f"gradebook: expected a folder of submissions, got {folder}")
    if not isinstance(assignment, Assignment):
        assignment = load_assignment(assignment)
    paths = sorted(p for p in folder.iterdir() if p.suffix in {".py", ".ipynb"} and p.is_file())
    if not paths:
        raise GraderError(f"gradebook: expected .py or .ipynb submissions in {folder}, found none")
    contents = {}
    for path in paths:  # every file read before any submission runs
        try:
            contents[path] = path.read_bytes()
        except OSError as err:
            raise GraderError(f"gradebook: cannot read {path}: {err}") from None
    _folder(out)
    feedback_dir, results_dir = _folder(out / "feedback"), _folder(out / "results")
    names = [e.check for e in assignment.exercises]
    fields = ["student", "file", *names, "total", "max", "notes", "sha256"]
    rows: List[Dict[str, Any]] = []
    outputs: Dict[pathlib.Path, str] = {}
    taken: Dict[str, pathlib.Path] = {}
    for path in paths:
        student = _student(path, taken)
        report = grade_submission(path, timeout=timeout, assignment=assignment, exercises_only=exercises_only,
                                  run_timeout=run_timeout, content=contents[path])
        by_name = {t["name"]: t for t in report["tests"]}
        notes = [f"{n}: {by_name[n]['detail']}" for n in names if by_name[n]["detail"] not in {"pass", "fail"}]
        if report["submission"]["status"] != "ok":
            notes.insert(0, f"submission: {report['submission']['status']}")
        row: Dict[str, Any] = {"student": student, "file": path.name}
        row.update({n: f"{by_name[n]['score']:g}" for n in names})
        row.update(total=f"{report['score']:g}", max=f"{report['max_score']:g}", notes="; ".join(notes),
                   sha256=hashlib.sha256(contents[path]).hexdigest())
        rows.append(row)
        outputs[feedback_dir / f"{student}.md"] = feedback_markdown(student, report)
        outputs[results_dir / f"{student}.json"] = json.dumps(report, indent=2, ensure_ascii=False)
        outputs[out / "gradebook.csv"] = _csv(rows, fields)
        for target in (feedback_dir / f"{student}.md", results_dir / f"{student}.json", out / "gradebook.csv"):
            _write(target, outputs[target])  # now: a crash later loses nothing
        if progress is not None:
            progress(student, report)
    for target, text in outputs.items():  # again at the end: nothing a submission wrote survives
        _write(target, text)
    return rows
