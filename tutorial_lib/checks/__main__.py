"""Command line of the checks package.

    python -m tutorial_lib.checks grade SUBMISSION [--assignment A.toml] [--json] [--timeout S]
                                    [--exercises-only] [--check NAME ...] [--checks FILE.py ...] [--verbose]
    python -m tutorial_lib.checks gradebook FOLDER --assignment A.toml --out OUT [--timeout S]
                                        [--run-timeout S] [--exercises-only] [--checks ...]
    python -m tutorial_lib.checks list [--checks FILE.py ...]

``grade`` prints a score table (or, with ``--json``, the report in Gradescope's ``results.json``
shape) and exits 0 whenever grading ran, whatever the score; exit code 2 means the grader itself
could not run (unreadable file, wrong extension, unknown check, broken checks file, bad
assignment). ``gradebook`` grades every submission of a folder into ``OUT/gradebook.csv``,
``OUT/feedback/<student>.md`` and ``OUT/results/<student>.json``. ``list``
prints the registered checks and the submission names each one grades. ``--checks FILE.py`` loads
a course's own checks (a file that calls ``register``) into the grader's process only: the checks
run there, and the submission's process never imports them.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional

from . import REGISTRY
from .grade import GraderError, format_table, grade_submission, load_checks
from .gradebook import grade_folder


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tutorial_lib.checks",
                                     description="Run the book's exercise checks on a submission.")
    sub = parser.add_subparsers(dest="command", required=True)
    grade = sub.add_parser("grade", help="grade a .py or .ipynb submission")
    grade.add_argument("submission", help="path of a .py file or .ipynb notebook")
    grade.add_argument("--assignment", metavar="A.toml",
                       help="the assignment: exercises, points, time limit, private seed (fixed total)")
    grade.add_argument("--json", action="store_true", help="print the report as JSON (for an LMS)")
    grade.add_argument("--timeout", type=float, default=120.0,
                       help="seconds per exercise unless the assignment says (default 120)")
    grade.add_argument("--run-timeout", type=float, default=None,
                       help="seconds for running the submission itself (default: the timeout)")
    grade.add_argument("--exercises-only", action="store_true",
                       help="notebooks: run only exercise-stub/exercise-solution cells")
    grade.add_argument("--check", action="append", metavar="NAME",
                       help="grade only this check (repeatable; see `list`)")
    grade.add_argument("--checks", action="append", default=[], metavar="FILE.py",
                       help="a course's own checks file to load (repeatable)")
    grade.add_argument("--verbose", "-v", action="store_true", help="print every check's full feedback")
    book = sub.add_parser("gradebook", help="grade a folder of submissions into a CSV gradebook")
    book.add_argument("folder", help="folder with one .py or .ipynb per student")
    book.add_argument("--assignment", required=True, metavar="A.toml", help="the assignment (see grade)")
    book.add_argument("--out", required=True, help="output folder: gradebook.csv, feedback/, results/")
    book.add_argument("--timeout", type=float, default=120.0, help="seconds per exercise unless the assignment says")
    book.add_argument("--run-timeout", type=float, default=None,
                      help="seconds for running each submission itself (default: the assignment's, else the timeout)")
    book.add_argument("--exercises-only", action="store_true",
                      help="notebooks: run only exercise-stub/exercise-solution cells")
    book.add_argument("--checks", action="append", default=[], metavar="FILE.py",
                      help="a course's own checks file to load (repeatable)")
    listing = sub.add_parser("list", help="list the registered checks")
    listing.add_argument("--checks", action="append", default=[], metavar="FILE.py",
                         help="also list the checks of this file (repeatable)")
    return parser


def _progress(student: str, report: dict) -> None:
    print(f"{student}: {report['score']:g}/{report['max_score']:g}")
    if report.get("library_changed"):
        print(f"warning: tutorial_lib files changed while {student} was graded: "
              f"{', '.join(report['library_changed'])} (check with git)", file=sys.stderr)


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        for path in args.checks:
            load_checks(path)
    except GraderError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.command == "list":
        width = max((len(n) for n in REGISTRY), default=5)
        for name, check in sorted(REGISTRY.items()):
            print(f"{name:<{width}}  grades {', '.join(check.names)}  ({check.points:g} pt): {check.description}")
        return 0
    if args.command == "gradebook":
        try:
            rows = grade_folder(args.folder, args.assignment, args.out, timeout=args.timeout,
                                exercises_only=args.exercises_only, run_timeout=args.run_timeout,
                                progress=_progress)
        except GraderError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(f"graded {len(rows)} submission(s): {args.out}/gradebook.csv and {args.out}/feedback/")
        return 0
    try:
        report = grade_submission(args.submission, timeout=args.timeout,
                                  exercises_only=args.exercises_only, only=args.check,
                                  extra_checks=args.checks, assignment=args.assignment,
                                  run_timeout=args.run_timeout)
    except GraderError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(format_table(report, verbose=args.verbose))
    return 0


if __name__ == "__main__":
    sys.exit(main())
