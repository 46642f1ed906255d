"""Command line of the instructor's grader.

    python -m tutorial_lib.grader grade SUBMISSION [--assignment A.toml] [--json] [--check NAME ...]
    python -m tutorial_lib.grader gradebook FOLDER --assignment A.toml --out OUT [--roster R.csv]
    python -m tutorial_lib.grader list [--checks FILE.py ...]
    python -m tutorial_lib.grader autograder A.toml --out autograder.zip      (Gradescope's format)

Common options: ``--timeout S`` (per exercise), ``--run-timeout S`` (running the submission),
``--exercises-only``, ``--checks FILE.py`` (a course's own checks, loaded here only) and
``--no-sandbox`` (grade without bubblewrap: every row says so). Exit codes: 0 when grading ran,
whatever the scores; 2 when the grader could not (bad assignment, unknown check, no sandbox).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import List, Optional

from ..checks import REGISTRY
from .assignment import GraderError
from .sandbox import SandboxError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tutorial_lib.grader",
        description="Grade submissions of the book's exercises in a sandbox.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    grade = sub.add_parser("grade", help="grade a .py or .ipynb submission")
    grade.add_argument("submission")
    grade.add_argument(
        "--json",
        action="store_true",
        help="print the report as JSON (Gradescope's shape)",
    )
    grade.add_argument(
        "--check",
        action="append",
        metavar="NAME",
        help="grade only this check (repeatable)",
    )
    grade.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="print every check's full feedback",
    )
    book = sub.add_parser(
        "gradebook", help="grade a folder of submissions into a CSV gradebook"
    )
    book.add_argument("folder")
    book.add_argument(
        "--out",
        required=True,
        help="output folder: gradebook.csv, feedback/, results/",
    )
    book.add_argument(
        "--roster", metavar="R.csv", help="a CSV with columns file and student"
    )
    for p in (grade, book):
        p.add_argument(
            "--assignment",
            metavar="A.toml",
            required=p is book,
            help="exercises, points, limits, seed",
        )
        p.add_argument(
            "--timeout",
            type=float,
            default=120.0,
            help="seconds per exercise unless the assignment says",
        )
        p.add_argument(
            "--run-timeout",
            type=float,
            default=None,
            help="seconds for running the submission",
        )
        p.add_argument(
            "--exercises-only",
            action="store_true",
            help="notebooks: run only the exercise cells",
        )
        p.add_argument(
            "--no-sandbox",
            action="store_true",
            help="grade without bubblewrap (trusted code only; every row says so)",
        )
    auto = sub.add_parser(
        "autograder", help="write a Gradescope autograder zip for an assignment"
    )
    auto.add_argument("assignment", metavar="A.toml")
    auto.add_argument("--out", default="autograder.zip")
    listing = sub.add_parser("list", help="list the registered checks")
    for p in (grade, book, listing, auto):
        p.add_argument(
            "--checks",
            action="append",
            default=[],
            metavar="FILE.py",
            help="a course's checks file",
        )
    return parser


def _stop(signum: int, frame: object) -> None:
    # unwinds: the sandbox is killed and the temporary folders removed
    raise SystemExit(128 + signum)


def main(argv: Optional[List[str]] = None) -> int:
    from .grade import format_table, grade_submission, load_checks

    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    try:
        for path in args.checks:
            load_checks(path)
        if args.command == "list":
            width = max((len(n) for n in REGISTRY), default=5)
            for name, check in sorted(REGISTRY.items()):
                print(
                    f"{name:<{width}}  grades {', '.join(check.names)}  ({check.points:g} pt): {check.description}"
                )
            return 0
        if args.command == "autograder":
            from .autograder import write_autograder

            print(
                f"wrote {write_autograder(args.assignment, args.out, args.checks)}"
            )
            return 0
        if args.command == "gradebook":
            from .gradebook import grade_folder

            rows = grade_folder(
                args.folder,
                args.assignment,
                args.out,
                timeout=args.timeout,
                exercises_only=args.exercises_only,
                run_timeout=args.run_timeout,
                sandbox=not args.no_sandbox,
                roster=args.roster,
                progress=lambda s, r: print(
                    f"{s}: {r['score']:g}/{r['max_score']:g}", flush=True
                ),
            )
            print(
                f"graded {len(rows)} submission(s): {args.out}/gradebook.csv and {args.out}/feedback/"
            )
            return 0
        report = grade_submission(
            args.submission,
            timeout=args.timeout,
            exercises_only=args.exercises_only,
            only=args.check,
            assignment=args.assignment,
            run_timeout=args.run_timeout,
            sandbox=not args.no_sandbox,
        )
    except (GraderError, SandboxError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        json.dumps(report, indent=2, ensure_ascii=False)
        if args.json
        else format_table(report, verbose=args.verbose)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
