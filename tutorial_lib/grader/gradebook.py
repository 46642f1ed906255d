"""Grade a folder of submissions into a CSV gradebook and one feedback file per student.

    python -m tutorial_lib.grader gradebook SUBMISSIONS/ --assignment A.toml --out OUT/ [--roster R.csv]

writes ``OUT/gradebook.csv`` (a row per submission: a column per exercise, the total, the
maximum, notes, the file's SHA-256), ``OUT/feedback/<student>.md`` and ``OUT/results/<student>.json``
(Gradescope's ``results.json`` shape). Every ``.py`` and ``.ipynb`` directly in the folder is read
into memory before any runs. The student is, in order: the roster's entry for the file (a CSV with
columns ``file`` and ``student``), the notebook's ``metadata.student``, a ``STUDENT = "..."`` line,
else the file name (noted). Two files of one student are both graded and both rows say so.

Whatever goes wrong with one submission (an unreadable file, an odd notebook, a crash, a time-out)
becomes its row with a note; the class goes on. Outputs are written only by this process, after
the submission's sandbox is gone, relative to the output folder it opened itself (no symbolic
link followed), group-readable (0640/0750). A CSV cell that begins with ``= + - @`` (or a tab or
carriage return) gets a leading ``'`` so a spreadsheet shows it as text; text a submission
controls is quoted in the feedback (in code blocks whose fence it cannot close).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import pathlib
import re
from typing import Any, Callable, Dict, List, Optional, Tuple

from .assignment import Assignment, GraderError, load_assignment
from .grade import NO_SANDBOX_NOTE, Grader, ungraded
from .submission import Submission, load_submission, student_id

__all__ = ["grade_folder", "feedback_markdown", "read_roster"]

_DETAIL = {
    "pass": "passed",
    "fail": "some cases failed",
    "error": "the check could not use your code",
    "missing": "not found",
    "timeout": "time limit exceeded",
    "crash": "the process died",
    "unreadable": "the file could not be read",
    "ungraded": "not graded",
}


def fenced(text: str) -> str:
    """``text`` in a fenced code block that no backtick run inside it can close."""
    runs = [len(r) for r in re.findall(r"`+", text)]
    fence = "`" * max(3, max(runs, default=0) + 1)
    return f"{fence}text\n{text}\n{fence}"


def feedback_markdown(student: str, report: Dict[str, Any]) -> str:
    """One student's feedback: total, one line per exercise, each exercise's details (quoted)."""
    sub = report["submission"]
    lines = [
        f"# Feedback for {student}",
        "",
        f"**Total: {report['score']:g} / {report['max_score']:g}**"
        + (f" ({report['assignment']})" if report.get("assignment") else ""),
        "",
    ]
    if not report.get("sandbox", True):
        lines += [f"*{NO_SANDBOX_NOTE}.*", ""]
    if sub["status"] != "ok":
        state = {
            "error": "raised errors while running",
            "timeout": "did not finish in time",
            "crash": "made Python exit",
            "unreadable": "could not be read",
            "ungraded": "could not be graded",
        }.get(sub["status"], sub["status"])
        text = "\n".join(
            [f"{e['label']}: {e['error']}" for e in sub["errors"]]
            + [sub.get("feedback") or ""]
        )
        lines += [f"Your submission {state}:", "", fenced(text.strip()), ""]
    lines += ["| Exercise | Points | Result |", "|---|---|---|"]
    for t in report["tests"]:
        lines.append(
            f"| `{t['name']}` | {t['score']:g} / {t['max_score']:g} | {_DETAIL.get(t['detail'], t['detail'])} |"
        )
    for t in report["tests"]:
        if t["detail"] != "pass" and t["output"]:
            lines += ["", f"## {t['name']}", "", fenced(t["output"].strip())]
    for path, share in report.get("similarity", {}).items():
        lines += [
            "",
            f"Note: {share:.0%} of the fingerprints of `{path}` (the library's code) are in this "
            "submission; your instructor will read it.",
        ]
    return "\n".join(lines) + "\n"


def neutralise(value: str) -> str:
    """A CSV cell a spreadsheet shows as text, never runs as a formula."""
    return "'" + value if value[:1] in {"=", "+", "-", "@", "\t", "\r"} else value


class Outputs:
    """The output folder, opened once; every file written by name relative to it, never via a link."""

    def __init__(self, out: pathlib.Path) -> None:
        if out.is_symlink():
            raise GraderError(
                f"gradebook: expected the output folder {out} to be a real folder, got a symbolic link"
            )
        out.mkdir(parents=True, exist_ok=True, mode=0o750)
        self.fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        os.fchmod(self.fd, 0o750)
        self.dirs = {"": self.fd}
        for name in ("feedback", "results"):
            try:
                os.mkdir(name, 0o750, dir_fd=self.fd)
            except FileExistsError:
                pass
            self.dirs[name] = os.open(
                name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=self.fd
            )
            os.fchmod(self.dirs[name], 0o750)

    def write(self, folder: str, name: str, text: str) -> None:
        fd, tmp = self.dirs[folder], f".{name}.tmp"
        try:
            os.unlink(tmp, dir_fd=fd)
        except FileNotFoundError:
            pass
        handle = os.open(
            tmp,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
            0o640,
            dir_fd=fd,
        )
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as fh:
            os.fchmod(fh.fileno(), 0o640)
            fh.write(text)
        os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)

    def close(self) -> None:
        for fd in self.dirs.values():
            os.close(fd)


def read_roster(path: "str | os.PathLike[str]") -> Dict[str, str]:
    """``file name -> student`` from a CSV with columns ``file`` and ``student``."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise GraderError(
            f"gradebook: cannot read the roster {path}: {err}"
        ) from None
    if not rows or not {"file", "student"} <= set(rows[0]):
        raise GraderError(
            f"gradebook: expected a roster CSV with columns file and student, got {path}"
        )
    return {r["file"]: r["student"] for r in rows}


def _identity(
    path: pathlib.Path, sub: Optional[Submission], roster: Dict[str, str]
) -> Tuple[str, List[str]]:
    notes = []
    for source, value in (
        ("roster", roster.get(path.name)),
        ("STUDENT", sub.student if sub else None),
    ):
        if value is None:
            continue
        if student_id(value):
            return value, notes
        notes.append(
            f"{source} id {json.dumps(value[:40])} is not a valid id (letters, digits, ._@+-)"
        )
    stem = re.sub(r"[^A-Za-z0-9._@+-]", "_", path.stem)[:64] or "unnamed"
    return stem, notes + [
        "id from the file name (no roster entry, STUDENT line or metadata)"
    ]


def grade_folder(
    folder: "str | os.PathLike[str]",
    assignment: "Assignment | str | os.PathLike[str]",
    out: "str | os.PathLike[str]",
    timeout: float = 120.0,
    progress: Optional[Callable[[str, Dict[str, Any]], None]] = None,
    exercises_only: bool = False,
    run_timeout: Optional[float] = None,
    sandbox: bool = True,
    roster: "str | os.PathLike[str] | None" = None,
) -> List[Dict[str, Any]]:
    """Grade every ``.py``/``.ipynb`` in ``folder``; write the gradebook, feedback and results; return the rows."""
    folder, out = pathlib.Path(folder), pathlib.Path(out)
    if not isinstance(assignment, Assignment):
        assignment = load_assignment(assignment)
    names = roster and read_roster(roster) or {}
    try:
        paths = sorted(p for p in folder.iterdir() if p.suffix in {".py", ".ipynb"})
    except OSError as err:
        raise GraderError(
            f"gradebook: expected a folder of submissions, got {folder} ({err})"
        ) from None
    if not paths:
        raise GraderError(
            f"gradebook: expected .py or .ipynb submissions in {folder}, found none"
        )
    contents: Dict[pathlib.Path, Any] = {}
    for path in paths:  # every file read before any submission runs
        try:
            if path.is_symlink():
                raise OSError("a symbolic link (not followed)")
            contents[path] = path.read_bytes()
        except OSError as err:
            contents[path] = err
    checks = [e.check for e in assignment.exercises]
    fields = ["student", "file", *checks, "total", "max", "notes", "sha256"]
    prepared = [
        _prepare(path, contents[path], names, exercises_only) for path in paths
    ]
    seen: Dict[str, List[str]] = {}
    for student, path, _, _ in prepared:
        seen.setdefault(student, []).append(path.name)
    outputs = Outputs(out)
    rows: List[Dict[str, Any]] = []
    try:
        with Grader(
            assignment.exercises,
            assignment,
            timeout,
            run_timeout,
            sandbox,
        ) as grader:
            for student, path, sub, notes in prepared:
                if isinstance(sub, Submission):
                    try:
                        # its sandbox is gone when this returns
                        report = grader.grade(sub)
                    # the grader's own failure on this file: still a row
                    except Exception as err:
                        sub = f"the grader failed on this file ({type(err).__name__}: {err})"
                if isinstance(sub, Submission):
                    if report["submission"]["status"] != "ok":
                        notes.append(
                            f"submission: {report['submission']['status']}"
                        )
                else:
                    data = contents[path]
                    report = ungraded(
                        assignment,
                        path,
                        "unreadable",
                        sub,
                        hashlib.sha256(data).hexdigest()
                        if isinstance(data, bytes)
                        else "",
                        sandbox,
                    )
                    notes.append(f"submission: unreadable ({sub})")
                others = [f for f in seen[student] if f != path.name]
                if others:
                    notes.insert(
                        0,
                        f"duplicate: {student} also submitted {', '.join(others)}",
                    )
                if not sandbox:
                    notes.insert(0, NO_SANDBOX_NOTE)
                by_name = {t["name"]: t for t in report["tests"]}
                notes += [
                    f"{n}: {by_name[n]['detail']}"
                    for n in checks
                    if by_name[n]["detail"] not in {"pass", "fail"}
                ]
                notes += [
                    f"similar to {p}: {v:.0%}"
                    for p, v in report.get("similarity", {}).items()
                ]
                rows.append(
                    {
                        "student": student,
                        "file": path.name,
                        **{n: f"{by_name[n]['score']:g}" for n in checks},
                        "total": f"{report['score']:g}",
                        "max": f"{report['max_score']:g}",
                        "notes": "; ".join(notes),
                        "sha256": report["submission"]["sha256"],
                    }
                )
                stem = (
                    student
                    if not others
                    else f"{student}--{re.sub(r'[^A-Za-z0-9._-]', '_', path.stem)}"
                )
                outputs.write(
                    "feedback", f"{stem}.md", feedback_markdown(student, report)
                )
                outputs.write(
                    "results",
                    f"{stem}.json",
                    json.dumps(report, indent=2, ensure_ascii=False),
                )
                # after each: a stop loses nothing
                outputs.write("", "gradebook.csv", _csv(rows, fields))
                if progress is not None:
                    progress(student, report)
    finally:
        outputs.close()
    return rows


def _csv(rows: List[Dict[str, Any]], fields: List[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(
        {k: neutralise(str(v)) for k, v in row.items()} for row in rows
    )
    return buffer.getvalue()


def _prepare(
    path: pathlib.Path, content: Any, roster: Dict[str, str], exercises_only: bool
) -> Tuple[str, pathlib.Path, Any, List[str]]:
    """(student, path, the Submission or why it cannot be read, notes), before anything runs."""
    sub: Any = None
    try:
        if isinstance(content, OSError):
            raise GraderError(f"cannot read {path.name}: {content}")
        sub = load_submission(path, exercises_only=exercises_only, content=content)
    except GraderError as err:
        sub = str(err)
    student, notes = _identity(
        path, sub if isinstance(sub, Submission) else None, roster
    )
    return student, path, sub, notes
