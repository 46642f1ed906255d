"""Grade a folder of submissions into a CSV gradebook and one feedback file per student.

    python -m tutorial_lib.checks gradebook SUBMISSIONS/ --assignment A.toml --out OUT/

writes ``OUT/gradebook.csv`` (one row per submission: a column per exercise, the total, the
maximum and notes), ``OUT/feedback/<student>.md`` (what each exercise found, with hints) and
``OUT/results/<student>.json`` (Gradescope's ``results.json`` shape, for an LMS import). The
student is the file name without its extension; every ``.py`` and ``.ipynb`` directly inside
the folder is a submission.
"""
from __future__ import annotations

import csv
import json
import os
import pathlib
from typing import Any, Callable, Dict, List, Optional

from .assignment import Assignment, GraderError, load_assignment

__all__ = ["grade_folder", "feedback_markdown"]

_DETAIL = {"pass": "passed", "fail": "some cases failed", "error": "the check could not use your code",
           "missing": "not found", "forbidden": "uses the library's own implementation",
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
                 "crash": "made Python exit"}.get(sub["status"], sub["status"])
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


def grade_folder(folder: "str | os.PathLike[str]", assignment: "Assignment | str | os.PathLike[str]",
                 out: "str | os.PathLike[str]", timeout: float = 120.0,
                 progress: Optional[Callable[[str, Dict[str, Any]], None]] = None) -> List[Dict[str, Any]]:
    """Grade every ``.py``/``.ipynb`` in ``folder``; write the gradebook, feedback and results; return the rows."""
    from .grade import grade_submission

    folder, out = pathlib.Path(folder), pathlib.Path(out)
    if not folder.is_dir():
        raise GraderError(f"gradebook: expected a folder of submissions, got {folder}")
    if not isinstance(assignment, Assignment):
        assignment = load_assignment(assignment)
    paths = sorted(p for p in folder.iterdir() if p.suffix in {".py", ".ipynb"} and p.is_file())
    if not paths:
        raise GraderError(f"gradebook: expected .py or .ipynb submissions in {folder}, found none")
    (out / "feedback").mkdir(parents=True, exist_ok=True)
    (out / "results").mkdir(parents=True, exist_ok=True)
    names = [e.check for e in assignment.exercises]
    rows: List[Dict[str, Any]] = []
    taken: Dict[str, pathlib.Path] = {}
    for path in paths:
        student = _student(path, taken)
        report = grade_submission(path, timeout=timeout, assignment=assignment)
        by_name = {t["name"]: t for t in report["tests"]}
        notes = [f"{n}: {by_name[n]['detail']}" for n in names if by_name[n]["detail"] not in {"pass", "fail"}]
        if report["submission"]["status"] != "ok":
            notes.insert(0, f"submission: {report['submission']['status']}")
        row: Dict[str, Any] = {"student": student, "file": path.name}
        row.update({n: f"{by_name[n]['score']:g}" for n in names})
        row.update(total=f"{report['score']:g}", max=f"{report['max_score']:g}", notes="; ".join(notes))
        rows.append(row)
        (out / "feedback" / f"{student}.md").write_text(feedback_markdown(student, report), encoding="utf-8")
        (out / "results" / f"{student}.json").write_text(json.dumps(report, indent=2, ensure_ascii=False),
                                                         encoding="utf-8")
        if progress is not None:
            progress(student, report)
    with open(out / "gradebook.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["student", "file", *names, "total", "max", "notes"])
        writer.writeheader()
        writer.writerows(rows)
    return rows
