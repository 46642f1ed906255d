"""Student versions of the chapters: solutions removed, stubs and checks kept.

    python tools/assignments.py [--out _assignments] [--colab-base URL] [NOTEBOOK ...]
    make assignments

For every chapter listed in ``_toc.yml`` (or the notebooks given) this writes
``<out>/<part>/<chapter>.ipynb`` and an index ``<out>/README.md``:

* ``exercise-solution`` cells are removed; ``exercise-stub`` and ``exercise-check`` cells stay, with
  their tags (the autograder uses them), their outputs cleared (the committed output of a check
  cell shows the *solution* passing) and a note on top of each stub;
* every other cell keeps its outputs (figures and tables can be read before anything runs, on
  GitHub, in Colab or in Jupyter); execution counts are cleared everywhere;
* the standard setup cell stays first (inserted if a chapter lacked it): on Colab it installs
  ``tutorial_lib`` from the repository;
* a markdown cell after the title says this is the student version and how it is graded.

``_assignments/`` is git-ignored. Colab opens notebooks from GitHub only when they are committed,
so with ``--colab-base`` (e.g. ``https://colab.research.google.com/github/ORG/REPO/blob/main`` of the
repository where you publish the folder) the index links each notebook to Colab; without it the
index links the files and explains how to upload them.
"""
from __future__ import annotations

import argparse
import copy
import pathlib
import shutil
import sys
from typing import List, Optional, Tuple

import nbformat

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from notebooks import apply_setup, chapters  # noqa: E402

EXERCISE_TAGS = {"exercise-stub", "exercise-check"}
BANNER = ("**Student version.** The solutions of the exercises are removed. Run the setup cell first "
          "(on Colab it installs `tutorial_lib`), replace each `raise NotImplementedError` or `...` by "
          "your code, and run the check cell after it: it prints what is wrong and a hint. Your "
          "instructor grades the notebook with `python -m tutorial_lib.checks grade`, which runs the "
          "same checks; keep the function and class names of the stubs.")
STUB_NOTE = "# Your answer: replace the NotImplementedError / ... below, keep the name and signature.\n"


def _tags(cell: nbformat.NotebookNode) -> set:
    return set(cell.get("metadata", {}).get("tags", []))


def student_version(nb: nbformat.NotebookNode) -> Tuple[nbformat.NotebookNode, int]:
    """A copy of ``nb`` without solutions (see the module docstring) and its number of exercises."""
    nb = copy.deepcopy(nb)
    apply_setup(nb)  # normally a no-op: chapters already start with it (tools/notebooks.py check)
    cells = []
    exercises = 0
    for cell in nb.cells:
        tags = _tags(cell)
        if "exercise-solution" in tags:
            continue
        if cell.cell_type == "code":
            cell.execution_count = None
            if tags & EXERCISE_TAGS:
                cell.outputs = []
            if "exercise-stub" in tags:
                exercises += 1
                if not cell.source.startswith(STUB_NOTE):
                    cell.source = STUB_NOTE + cell.source
        cells.append(cell)
    title = next((i for i, c in enumerate(cells) if c.cell_type == "markdown"), -1)
    cells.insert(title + 1, nbformat.v4.new_markdown_cell(BANNER))
    nb.cells = cells
    return nb, exercises


def _title(nb: nbformat.NotebookNode, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


def write_assignments(paths: List[pathlib.Path], out: pathlib.Path,
                      colab_base: Optional[str] = None) -> List[Tuple[pathlib.Path, str, int]]:
    """Write the student notebooks and the index; return ``(path, title, exercises)`` per notebook."""
    index = out / "README.md"
    ours = index.exists() and index.read_text(encoding="utf-8").startswith("# Student notebooks")
    if out.exists() and any(out.iterdir()) and not ours:  # never delete a folder this tool did not write
        raise ValueError(f"assignments: expected an empty or previously generated output folder, got {out}")
    if out.exists():
        shutil.rmtree(out)
    written = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        student, exercises = student_version(nb)
        leftover = [i for i, c in enumerate(student.cells) if "exercise-solution" in _tags(c)]
        if leftover:  # cannot happen: a guard so that a solution never ships by accident
            raise RuntimeError(f"{path}: solution cells {leftover} survived")
        rel = path.resolve().relative_to(ROOT / "book") if (ROOT / "book") in path.resolve().parents else pathlib.Path(path.name)
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(student, target)
        written.append((rel, _title(nb, path.stem), exercises))
    (out / "README.md").write_text(_index(written, colab_base), encoding="utf-8")
    return written


def _index(written: List[Tuple[pathlib.Path, str, int]], colab_base: Optional[str]) -> str:
    lines = ["# Student notebooks", "",
             "Generated by `make assignments` (tools/assignments.py) from the book's chapters: solutions "
             "removed, stubs and checks kept. Each exercise's check cell gives immediate feedback; the "
             "instructor grades a returned notebook with", "",
             "```bash", "python -m tutorial_lib.checks grade NOTEBOOK.ipynb          # score table",
             "python -m tutorial_lib.checks grade NOTEBOOK.ipynb --json   # for an LMS", "```", "",
             "| Chapter | Exercises | Open |", "|---|---|---|"]
    for rel, title, exercises in written:
        link = f"[Colab]({colab_base.rstrip('/')}/{rel.as_posix()})" if colab_base else f"[file]({rel.as_posix()})"
        lines.append(f"| {title} | {exercises} | {link} |")
    if not colab_base:
        lines += ["", "To use Colab, publish this folder in a GitHub repository and rerun "
                  "`python tools/assignments.py --colab-base "
                  "https://colab.research.google.com/github/ORG/REPO/blob/BRANCH` for direct links, or "
                  "upload a notebook in Colab (File → Upload notebook)."]
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=pathlib.Path, help="default: every chapter in _toc.yml")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "_assignments")
    parser.add_argument("--colab-base", default=None, help="URL prefix for Colab links in the index")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or chapters()
    written = write_assignments(paths, args.out, args.colab_base)
    total = sum(n for _, _, n in written)
    print(f"wrote {len(written)} student notebooks ({total} exercises) and README.md to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
