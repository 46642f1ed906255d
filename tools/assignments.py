"""The course kit: student notebooks, instructor notebooks with rubrics, and assignment files.

    python tools/assignments.py [--out _assignments] [--colab-base URL] [NOTEBOOK ...]
    make assignments

For every chapter listed in ``_toc.yml`` (or the notebooks given) this writes

``<out>/student/<part>/<chapter>.ipynb`` (hand these out; index ``<out>/student/README.md``):

* ``exercise-solution`` cells are removed; ``exercise-stub`` and ``exercise-check`` cells stay, with
  their tags (the autograder uses them) and their outputs cleared (the committed output of a check
  cell shows the *solution* passing); a note sits on top of each stub;
* each check cell catches the check's ``AssertionError`` (the check prints what is wrong), so
  "Run all" in Jupyter or Colab runs to the end with unfinished exercises;
* the ``show_source`` listings of the components the chapter's exercises ask for (the library's
  implementation, ``register(..., forbid=...)`` of their checks) are removed with their outputs,
  and the chapter-specific passages that compute an exercise's answer (``REDACTIONS``) are replaced;
* glued numbers are written into the prose (``{glue:text}`name:fmt``` becomes the stored value,
  formatted), as the rendered book shows them;
* every other cell keeps its outputs; execution counts are cleared; the setup cell stays first;
  a banner after the title says how the notebook is graded.

``<out>/instructor/<part>/<chapter>.ipynb`` (keep private): the chapter with solutions, glued
numbers rendered, and an answer key / rubric after each discussion exercise (``tools/grade_rubrics.py``);
``<out>/instructor/<part>/<chapter>.toml``: the chapter's assignment file for
``python -m tutorial_lib.grader gradebook`` (one entry per coded exercise, a freshly drawn
``private_seed`` and explicit time limits; edit points, or merge several chapters into one file).

``_assignments/`` is git-ignored. Colab opens notebooks from GitHub only when they are committed,
so with ``--colab-base`` (e.g. ``https://colab.research.google.com/github/ORG/REPO/blob/main`` of the
repository where you publish the *student* folder) the index links each notebook to Colab; without
it the index links the files and explains how to upload them.
"""
from __future__ import annotations

import argparse
import ast
import copy
import pathlib
import re
import shutil
import sys
from typing import Dict, List, Optional, Set, Tuple

import nbformat

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from grade_rubrics import RUBRICS  # noqa: E402
from notebooks import apply_setup, numbered_chapters  # noqa: E402

EXERCISE_TAGS = {"exercise-stub", "exercise-check"}
BANNER = ("**Student version.** The solutions of the exercises are removed, and so are the listings of "
          "the library code they ask you to write. Run the setup cell first (on Colab it installs "
          "`tutorial_lib`), replace each `raise NotImplementedError` or `...` by your code, and run the "
          "check cell after it: it prints what is wrong and a hint (\"Run all\" runs to the end even "
          "while exercises are unfinished). Your instructor grades the notebook with the same checks on "
          "other cases; keep the function and class names of the stubs, and write them yourself: an "
          "answer that calls `tutorial_lib`'s own implementation of the exercise scores 0.")
INSTRUCTOR_BANNER = ("**Instructor version — do not distribute.** The chapter with the solutions of the coded "
                     "exercises (the cells tagged `exercise-solution`) and an answer key and rubric after "
                     "each discussion exercise. Grade the coded exercises with "
                     "`python -m tutorial_lib.grader gradebook SUBMISSIONS/ --assignment <chapter>.toml "
                     "--out OUT/`.")
LISTING_NOTE = ("*Student version: the listing of {names} is removed here — writing it is an exercise "
                "of this chapter.*")

#: components whose listing stays although an exercise's check forbids using them: they are the
#: measuring tool, not the answer (uniform_erf must be computed *without* the ERF measurement)
LISTINGS_KEPT = {"effective_receptive_field"}

#: chapter passages that compute an exercise's answer outside the exercise: (chapter stem, exact
#: text in a cell, replacement in the student version). A stale entry fails loudly (ValueError).
REDACTIONS: List[Tuple[str, str, str]] = [
    ("13_receptive_fields",
     "profile = np.array([1.0])\n"
     "for _ in range(n):\n"
     "    profile = np.convolve(profile, [1.0, 1.0, 1.0])  # coefficients of (1 + z + z^2)^n\n"
     "by_hand = torch.from_numpy(np.outer(profile, profile))\n",
     "# (This map in closed form is Exercise 2, uniform_erf: write it and compare it here.)\n"),
    ("13_receptive_fields",
     "torch.testing.assert_close(measured[c - n : c + n + 1, c - n : c + n + 1], by_hand)\n", ""),
    ("13_receptive_fields", "We compute it by hand and\ncompare with the library's measurement:",
     "Computing it by hand is\nExercise 2; here is the library's measurement:"),
]
STUB_NOTE = "# Your answer: replace the NotImplementedError / ... below, keep the name and signature.\n"
#: the grader's identity line (tutorial_lib.grader reads a top-level STUDENT = "..." string; a roster
#: file or the notebook's metadata "student" take precedence): the last cells of every student notebook
STUDENT_CELLS = ("### Hand in\n\nWrite your student id below (as your instructor's roster spells it): "
                 "the grader reads this line, so a downloaded notebook's file name does not matter.",
                 'STUDENT = ""  # your student id, e.g. "s1234567"\n')


def _tags(cell: nbformat.NotebookNode) -> set:
    return set(cell.get("metadata", {}).get("tags", []))


_GLUE = re.compile(r"\{glue(?::text)?\}`([A-Za-z_]\w*)(?::([^`]*))?`")


def glue_values(nb: nbformat.NotebookNode) -> Dict[str, str]:
    """``name -> text/plain`` of every value the notebook glued (``tutorial_lib.glue`` outputs)."""
    values: Dict[str, str] = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            name = out.get("metadata", {}).get("scrapbook", {}).get("name")
            prefix = out.get("metadata", {}).get("scrapbook", {}).get("mime_prefix", "")
            text = out.get("data", {}).get(prefix + "text/plain")
            if name and text is not None:
                values[name] = "".join(text) if isinstance(text, list) else text
    return values


def format_glued(text: str, spec: Optional[str]) -> str:
    """The glued ``text/plain`` value as the book renders ``{glue:text}`name:spec```.

    The same rules as ``myst_nb.core.variables.format_plain_text`` (a test compares the two): the
    text is read as a Python literal, then converted by the spec's type character and formatted.
    """
    try:
        value = ast.literal_eval(text)
    except (SyntaxError, ValueError):
        value = text
    if not spec:
        return str(value)
    kind = spec[-1]
    if kind == "s":
        value = str(value)
    elif kind in "bcdoxX":
        value = int(value)
    elif kind in "eEfFgGn%":
        value = float(value)
    return format(value, spec)


def render_glue(nb: nbformat.NotebookNode, chapter: str = "notebook") -> int:
    """Write the glued numbers into the markdown (in place); return how many roles were rendered."""
    values = glue_values(nb)
    count = 0

    def sub(match: "re.Match[str]") -> str:
        nonlocal count
        name, spec = match.group(1), match.group(2)
        if name not in values:
            raise ValueError(f"{chapter}: expected a stored glue output named {name!r} for "
                             f"{match.group(0)}, got none (run make notebooks)")
        count += 1
        return format_glued(values[name], spec)

    for cell in nb.cells:
        if cell.cell_type == "markdown" and "{glue" in cell.source:
            cell.source = _GLUE.sub(sub, cell.source)
            if "{glue" in cell.source:
                raise ValueError(f"{chapter}: expected only {{glue:text}}`name:fmt` roles, got "
                                 f"{cell.source[cell.source.index('{glue'):][:40]!r}")
    return count


def exercised_components(nb: nbformat.NotebookNode) -> Set[str]:
    """Names of the library objects the notebook's exercises ask students to write."""
    from tutorial_lib.checks import REGISTRY

    names: Set[str] = set()
    for cell in nb.cells:
        if "exercise-check" in _tags(cell):
            for check in REGISTRY.values():
                if re.search(rf"\b{check.func.__name__}\s*\(", cell.source):
                    names |= {path.rpartition(".")[2] for path in check.forbid}
    return names - LISTINGS_KEPT


def _listed(call: ast.Call) -> Optional[str]:
    """``metrics.iou_per_class`` or ``setr.PUPHead.forward`` of a ``show_source(...)`` call."""
    func = call.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    return ast.unparse(call.args[0]) if name == "show_source" and call.args else None


def remove_listings(cell: nbformat.NotebookNode, components: Set[str]) -> List[str]:
    """Drop the cell's ``show_source`` calls of ``components`` and their outputs; return what was dropped."""
    try:
        tree = ast.parse(cell.source)
    except SyntaxError:
        return []
    lines = cell.source.splitlines()
    dropped: List[str] = []
    for node in reversed(tree.body):
        call = node.value if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) else None
        listed = _listed(call) if call is not None else None
        if listed is None:
            continue
        parts = listed.split(".")
        if parts[-1] in components or (len(parts) > 1 and parts[-2] in components):
            del lines[node.lineno - 1:node.end_lineno]
            dropped.insert(0, listed)
    if dropped:
        cell.source = "\n".join(lines).strip("\n")
        cell.outputs = [o for o in cell.outputs if not (o.get("output_type") in {"execute_result", "display_data"}
                                                        and "text/html" in o.get("data", {}))]
    return dropped


def _redact(nb: nbformat.NotebookNode, chapter: str) -> None:
    for stem, old, new in REDACTIONS:
        if stem != chapter:
            continue
        cells = [c for c in nb.cells if old in c.source]
        if not cells:
            raise ValueError(f"assignments: REDACTIONS for {chapter} expected the text {old[:60]!r} in a cell, "
                             f"found none (the chapter changed: update tools/assignments.py)")
        for cell in cells:
            cell.source = cell.source.replace(old, new)


def student_version(nb: nbformat.NotebookNode, chapter: str = "notebook") -> Tuple[nbformat.NotebookNode, int]:
    """A copy of ``nb`` for students (see the module docstring) and its number of exercises."""
    nb = copy.deepcopy(nb)
    apply_setup(nb)  # normally a no-op: chapters already start with it (tools/notebooks.py check)
    render_glue(nb, chapter)
    _redact(nb, chapter)
    components = exercised_components(nb)
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
            elif "exercise-check" in tags:
                cell.source = _run_all_safe(cell.source)
            else:
                dropped = remove_listings(cell, components)
                if dropped:
                    cells.append(cell)
                    names = ", ".join(f"`{d}`" for d in dropped)
                    cells.append(nbformat.v4.new_markdown_cell(LISTING_NOTE.format(names=names)))
                    continue
        cells.append(cell)
    title = next((i for i, c in enumerate(cells) if c.cell_type == "markdown"), -1)
    cells.insert(title + 1, nbformat.v4.new_markdown_cell(BANNER))
    if exercises:  # the grader's identity line (STUDENT_CELLS)
        cells += [nbformat.v4.new_markdown_cell(STUDENT_CELLS[0]), nbformat.v4.new_code_cell(STUDENT_CELLS[1])]
    nb.cells = cells
    return nb, exercises


def _run_all_safe(source: str) -> str:
    """The check cell with its ``check_*`` call inside ``try``/``except AssertionError``."""
    tree = ast.parse(source)
    lines = source.splitlines()
    for node in reversed(tree.body):
        call = node.value if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) else None
        func = getattr(call, "func", None)
        name = getattr(func, "attr", None) or getattr(func, "id", "")
        if call is not None and name.startswith("check_"):
            body = lines[node.lineno - 1:node.end_lineno]
            lines[node.lineno - 1:node.end_lineno] = (
                ["try:"] + ["    " + ln for ln in body]
                + ["except AssertionError:", "    pass  # the check printed what to fix; \"Run all\" goes on"])
    return "\n".join(lines) + "\n"


def discussion_exercises(nb: nbformat.NotebookNode) -> List[Tuple[int, int, str]]:
    """``(cell index, exercise number, title)`` of each exercise that has no coded stub."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        heads = list(re.finditer(r"^### Exercise (\d+)\s*[—-]\s*(.+)$", cell.source, re.M))
        nxt = nb.cells[i + 1] if i + 1 < len(nb.cells) else None
        coded_last = nxt is not None and "exercise-stub" in _tags(nxt)
        for k, head in enumerate(heads):
            if not (coded_last and k == len(heads) - 1):
                found.append((i, int(head.group(1)), head.group(2).strip()))
    return found


def instructor_version(nb: nbformat.NotebookNode, chapter: str = "notebook") -> nbformat.NotebookNode:
    """The chapter with solutions, glued numbers rendered and a rubric after each discussion exercise."""
    nb = copy.deepcopy(nb)
    render_glue(nb, chapter)
    inserts = []
    for index, number, title in discussion_exercises(nb):
        rubric = RUBRICS.get((chapter, number))
        if rubric is None:
            raise ValueError(f"assignments: expected a rubric for {chapter} exercise {number} ({title}) in "
                             f"tools/grade_rubrics.py, got none")
        inserts.append((index, number, nbformat.v4.new_markdown_cell(
            f"**Answer key and rubric — Exercise {number} ({title})**\n\n{rubric.strip()}")))
    for index, _, cell in sorted(inserts, key=lambda t: (-t[0], -t[1])):  # the last first: order kept
        nb.cells.insert(index + 1, cell)
    title = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"), -1)
    nb.cells.insert(title + 1, nbformat.v4.new_markdown_cell(INSTRUCTOR_BANNER))
    return nb


#: seconds per exercise (a check calls the submission's code a few times on small inputs)
EXERCISE_TIMEOUT = 60
#: seconds for running a whole chapter notebook before the checks (chapter 01 takes about 67 s on
#: two busy cores; ``gradebook --exercises-only`` runs only the exercise cells, in seconds)
RUN_TIMEOUT = 600


def assignment_toml(nb: nbformat.NotebookNode, title: str, seed: "int | None" = None) -> str:
    """The chapter's assignment file: one exercise per check cell, the check's points, a fresh
    private seed (``secrets.randbelow(2**31)`` unless given) and explicit time limits."""
    import secrets

    from tutorial_lib.checks import REGISTRY
    from tutorial_lib.grader.assignment import Assignment, Exercise

    exercises = []
    for cell in nb.cells:
        if "exercise-check" in _tags(cell):
            for check in REGISTRY.values():
                if re.search(rf"\b{check.func.__name__}\s*\(", cell.source):
                    exercises.append(Exercise(check.name, check.points))
    seed = secrets.randbelow(2**31) if seed is None else seed
    body = Assignment(title=title, exercises=exercises).to_toml()
    head, _, rest = body.partition("\n")
    return ("# Assignment file for python -m tutorial_lib.grader gradebook. Keep it private: the checks draw\n"
            "# their random cases from private_seed, so answers hard-coded from the public notebook fail.\n"
            + head + "\n"
            + f"timeout = {EXERCISE_TIMEOUT}  # seconds per exercise\n"
            + f"run_timeout = {RUN_TIMEOUT}  # seconds for running the whole submission first "
              "(a full chapter notebook is slow)\n"
            + f"private_seed = {seed}  # drawn by tools/assignments.py; change it for each class\n"
            + rest)


def _title(nb: nbformat.NotebookNode, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


KIT_MARK = "# Course kit"


def write_assignments(paths: List[pathlib.Path], out: pathlib.Path,
                      colab_base: Optional[str] = None) -> List[Tuple[pathlib.Path, str, int]]:
    """Write the student and instructor notebooks, assignment files and indexes; return
    ``(path, title, exercises)`` per notebook."""
    index = out / "README.md"
    ours = index.exists() and index.read_text(encoding="utf-8").startswith(KIT_MARK)
    if out.exists() and any(out.iterdir()) and not ours:  # never delete a folder this tool did not write
        raise ValueError(f"assignments: expected an empty or previously generated output folder, got {out}")
    if out.exists():
        shutil.rmtree(out)
    written = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        chapter = path.stem
        student, exercises = student_version(nb, chapter)
        leftover = [i for i, c in enumerate(student.cells) if "exercise-solution" in _tags(c)]
        if leftover:  # cannot happen: a guard so that a solution never ships by accident
            raise RuntimeError(f"{path}: solution cells {leftover} survived")
        rel = path.resolve().relative_to(ROOT / "book") if (ROOT / "book") in path.resolve().parents else pathlib.Path(path.name)
        for folder, version in (("student", student), ("instructor", instructor_version(nb, chapter))):
            target = out / folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(version, target)
        if exercises:
            (out / "instructor" / rel).with_suffix(".toml").write_text(
                assignment_toml(nb, _title(nb, chapter)), encoding="utf-8")
        written.append((rel, _title(nb, chapter), exercises))
    (out / "student" / "README.md").write_text(_index(written, colab_base), encoding="utf-8")
    index.write_text(f"{KIT_MARK}\n\nGenerated by `make assignments` (tools/assignments.py).\n\n"
                     "* `student/`: the notebooks to hand out (publish this folder, not its parent);\n"
                     "* `instructor/`: solutions, rubrics of the discussion exercises and one assignment "
                     "file per chapter (`<chapter>.toml`) — keep private.\n", encoding="utf-8")
    return written


def _index(written: List[Tuple[pathlib.Path, str, int]], colab_base: Optional[str]) -> str:
    lines = ["# Student notebooks", "",
             "Generated by `make assignments` (tools/assignments.py) from the book's chapters: solutions "
             "removed, stubs and checks kept. Each exercise's check cell gives immediate feedback; the "
             "instructor grades the returned notebooks with the same checks (on cases of their own):", "",
             "```bash", "python -m tutorial_lib.grader gradebook submissions/ --assignment CHAPTER.toml --out grades/",
             "```", "",
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
    paths = [p.resolve() for p in args.notebooks] or numbered_chapters()
    written = write_assignments(paths, args.out, args.colab_base)
    total = sum(n for _, _, n in written)
    print(f"wrote {len(written)} student notebooks ({total} exercises) to {args.out}/student and the "
          f"instructor versions, rubrics and assignment files to {args.out}/instructor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
