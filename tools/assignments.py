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
#: the cells of a predict-then-measure exercise (tools/exercise_cells/): the student's prediction, the
#: measurement (library code), the check, and the reveal (a markdown dropdown with the reasoning)
PREDICT_TAGS = {"predict-stub", "predict-measure", "predict-check"}
PREDICT_REVEAL = "predict-reveal"
#: a code cell that starts a discussion exercise's work on the library's components (kept as is)
SCAFFOLD_TAG = "discussion-scaffold"
#: the first cell after an exercise heading that makes it a coded (checked) exercise
CODED_STARTS = {"exercise-stub", "predict-stub"}
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
     "    # coefficients of (1 + z + z^2)^n\n"
     "    profile = np.convolve(profile, [1.0, 1.0, 1.0])\n"
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


def render_glue(nb: nbformat.NotebookNode, chapter: str = "notebook", mark: bool = False) -> int:
    """Write the glued numbers into the markdown (in place); return how many roles were rendered
    (``mark``: flag each such cell in its metadata, for the student build's "the book's run" note)."""
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
            if mark:
                cell.metadata["student_glued"] = True  # read (and removed) by _mark_book_numbers
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


def _only_imports(source: str) -> bool:
    """Whether the code is nothing but import statements (and comments)."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return False
    imports = (ast.Import, ast.ImportFrom)
    return bool(body) and all(isinstance(n, imports) for n in body)


def _carry_imports(cells: List[nbformat.NotebookNode], at: int, imports: str):
    """Move the import statements of a cell that held only them and a removed
    listing into the first code cell from ``at`` on that uses what each binds
    (without binding it itself); an import no later cell uses is dropped."""
    for node in ast.parse(imports).body:
        line = ast.get_source_segment(imports, node)
        names = _bound_names(line)
        for cell in cells[at:]:
            if cell.cell_type != "code" or _tags(cell) & EXERCISE_TAGS:
                continue
            uses = names & _used_names(cell.source)
            if uses and not names & _bound_names(cell.source):
                starts = cell.source.startswith(("import ", "from "))
                cell.source = line + ("\n" if starts else "\n\n") + cell.source
                break


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
    render_glue(nb, chapter, mark=True)
    _redact(nb, chapter)
    components = exercised_components(nb)
    cells = []
    carried: List[Tuple[int, str]] = []  # imports left alone by a removed listing
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
                    # the listing was the point of a cell left with only imports
                    if _only_imports(cell.source):
                        carried.append((len(cells), cell.source))
                    else:
                        cells.append(cell)
                    names = ", ".join(f"`{d}`" for d in dropped)
                    cells.append(nbformat.v4.new_markdown_cell(LISTING_NOTE.format(names=names)))
                    continue
        cells.append(cell)
    for at, imports in reversed(carried):
        _carry_imports(cells, at, imports)
    title = next((i for i, c in enumerate(cells) if c.cell_type == "markdown"), -1)
    cells.insert(title + 1, nbformat.v4.new_markdown_cell(BANNER))
    if exercises:  # the grader's identity line (STUDENT_CELLS)
        cells += [nbformat.v4.new_markdown_cell(STUDENT_CELLS[0]), nbformat.v4.new_code_cell(STUDENT_CELLS[1])]
    nb.cells = cells
    exercises += clean_student_build(nb, chapter)
    return nb, exercises


# -- the clean student build (issue #25): kept apart from the grading machinery above ------------------

#: the answer cell a student writes in, after each discussion exercise
ANSWER_CELL = "**Your answer** (Exercise {number}): *write your reasoning here — double-click to edit.*"
REVEAL_SUMMARY = "Model answer — open it after you have written yours"
PREDICT_SUMMARY = "Why? — open it after you have predicted and measured"
STUDENT_NB_NOTE = ("*The numbers in this cell are the book's run, rendered when the book was built; "
                   "your run prints its own above.*")
PREDICT_NOTE = "# Your prediction: replace each ... before you run the measurement below.\n"


def book_base_url() -> str:
    """The published book's address: ``html.baseurl`` of ``_config.yml`` if set, else the GitHub Pages
    address of ``repository.url`` (``https://github.com/ORG/REPO`` → ``https://ORG.github.io/REPO/``),
    where the repository's Pages workflow publishes ``make book``'s HTML."""
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    base = (config.get("html") or {}).get("baseurl")
    if base:
        return base.rstrip("/") + "/"
    match = re.match(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?/?$", config["repository"]["url"])
    if not match:
        raise ValueError(f"assignments: expected a GitHub repository URL in _config.yml, got "
                         f"{config['repository']['url']!r}")
    return f"https://{match.group(1).lower()}.github.io/{match.group(2)}/"


def _bibliography() -> Dict[str, str]:
    """``key -> "Xie et al., 2021"`` from book/references.bib (a small reader for its plain entries)."""
    text = (ROOT / "book" / "references.bib").read_text(encoding="utf-8")
    found: Dict[str, str] = {}
    for entry in re.finditer(r"@\w+\{([^,\s]+),(.*?)\n\}", text, re.S):
        key, body = entry.group(1), entry.group(2)
        author = re.search(r"author\s*=\s*\{(.+?)\}\s*,?\s*\n", body, re.S)
        year = re.search(r"year\s*=\s*\{?(\d{4})", body)
        names = [a.strip() for a in re.split(r"\s+and\s+", author.group(1))] if author else ["?"]
        surname = lambda n: (n.split(",")[0] if "," in n else n.split()[-1]).strip("{} ")  # noqa: E731
        who = surname(names[0]) + (" et al." if len(names) > 2 else f" and {surname(names[1])}"
                                   if len(names) == 2 else "")
        found[key] = f"{who}, {year.group(1) if year else 'n.d.'}"
    return found


_CITE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")
_LINK = re.compile(r"\]\((?!https?://|#|mailto:)([^)\s#]+?)\.(?:ipynb|md)(#[^)\s]*)?\)")
_MAKE = re.compile(r"`make (experiments|bench|claims|checkpoints|book|test)`")


_NUMREF = re.compile(r"\{numref\}`[^`]*`")


def render_book_roles(source: str, chapter_path: str, bib: Dict[str, str], base: str) -> str:
    """Markdown without the book's build-only syntax: ``{cite}`` roles as "(Author et al., year)",
    ``{numref}`` figure references as "the figure", links
    to other chapters as absolute URLs of the published book, ``make`` targets as the repository's."""
    def cite(match: "re.Match[str]") -> str:
        keys = [k.strip() for k in match.group(1).split(",")]
        missing = [k for k in keys if k not in bib]
        if missing:
            raise ValueError(f"assignments: {chapter_path}: no entry for {missing} in book/references.bib")
        return "(" + "; ".join(bib[k] for k in keys) + ")"

    def link(match: "re.Match[str]") -> str:
        folder = pathlib.PurePosixPath(chapter_path).parent
        target = pathlib.PurePosixPath(*(folder / match.group(1)).parts)
        parts: List[str] = []
        for part in target.parts:  # resolve ../ without touching the file system
            if part == "..":
                parts.pop()
            elif part != ".":
                parts.append(part)
        return f"]({base}{'/'.join(parts)}.html{match.group(2) or ''})"

    def numref(match: "re.Match[str]") -> str:
        # figure numbers exist only in the built book: "the figure" (capitalised at the
        # start of a sentence) points at the figure the chapter just showed
        before = source[: match.start()].rstrip(" *_(")
        start = not before or before.endswith((".", "!", "?", ":", "\n"))
        return "The figure" if start else "the figure"

    source = _NUMREF.sub(numref, source)
    source = _CITE.sub(cite, source)
    source = _LINK.sub(link, source)
    return _MAKE.sub(lambda m: f"`make {m.group(1)}` (in a clone of the book's repository)", source)


def _bound_names(source: str) -> Set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def _used_names(source: str) -> Set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set(re.findall(r"[A-Za-z_]\w*", source))
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} | \
        {n.value.id for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)}


def _drop_unused_show_source(cells: List[nbformat.NotebookNode]) -> None:
    """Remove ``show_source`` from imports once no cell calls it (its listings were removed)."""
    if any(re.search(r"\bshow_source\s*\(", c.source) for c in cells if c.cell_type == "code"):
        return
    for cell in cells:
        if cell.cell_type != "code" or "show_source" not in cell.source:
            continue
        lines = []
        for line in cell.source.splitlines():
            m = re.match(r"^(\s*from\s+\S+\s+import\s+)(.+)$", line)
            if m and "show_source" in m.group(2) and "(" not in m.group(2):
                rest = [n.strip() for n in m.group(2).split(",") if n.strip() and n.strip() != "show_source"]
                if rest:
                    lines.append(m.group(1) + ", ".join(rest))
                continue
            lines.append(line)
        cell.source = "\n".join(lines).strip("\n")


def _split_exercise_headings(cells: List[nbformat.NotebookNode]) -> List[nbformat.NotebookNode]:
    """One markdown cell per exercise heading, so that an answer cell can follow each exercise."""
    out = []
    for cell in cells:
        if cell.cell_type == "markdown":
            starts = [m.start() for m in re.finditer(r"^### Exercise \d+", cell.source, re.M)]
            if len(starts) > 1 or (starts and starts[0] > 0):
                bounds = ([0] if starts[0] > 0 else []) + starts + [len(cell.source)]
                for a, b in zip(bounds, bounds[1:]):
                    piece = cell.source[a:b].strip("\n")
                    if piece:
                        new = nbformat.v4.new_markdown_cell(piece)
                        new.metadata = copy.deepcopy(cell.metadata)
                        out.append(new)
                continue
        out.append(cell)
    return out


def _details(summary: str, body: str) -> str:
    return f"<details>\n<summary>{summary}</summary>\n\n{body.strip()}\n\n</details>"


def _model_answer(rubric: str) -> str:
    """The rubric's "Expected answer" paragraph(s), without the grading points."""
    head, _, _ = rubric.partition("**Rubric")
    return head.strip()


def _dropdown_to_details(source: str) -> str:
    """A MyST ``{dropdown}`` directive (the book's folded reveal) as HTML ``<details>`` (Jupyter, Colab)."""
    pattern = re.compile(r"^(`{3,}|:{3,})\{dropdown\}\s*(.*?)\n(.*?)^\1\s*$", re.S | re.M)
    return pattern.sub(lambda m: _details(m.group(2).strip() or PREDICT_SUMMARY, m.group(3)), source)


def clean_student_build(nb: nbformat.NotebookNode, chapter: str, reveal: str = "folded") -> int:
    """The student notebook's last pass (in place); returns the number of predict-then-measure exercises.

    * ``remove-cell`` cells are dropped; a ``remove-input`` cell (code that writes numbers for the prose)
      is dropped when no later cell uses a name it binds, else kept with its source folded;
    * code cells left empty (a removed listing) are dropped, and ``show_source`` leaves the imports;
    * ``{cite}`` roles, links to other chapters and ``make`` targets are rendered for a notebook outside
      the book (:func:`render_book_roles`, base URL :func:`book_base_url`); a markdown cell whose numbers
      were glued says that they are the book's run;
    * predict-then-measure cells: the prediction cell gets a note, the check cell runs "Run all"-safe, the
      reveal dropdown becomes a folded ``<details>``;
    * after each discussion exercise (and its scaffold cells) an answer cell, then — ``reveal="folded"`` —
      the model answer from ``tools/grade_rubrics.py`` folded (``reveal="none"``: the instructor releases it);
    * the setup cell comes right after the title and the banner.
    """
    from notebooks import SETUP_MARK

    bib, base = _bibliography(), book_base_url()
    path = next((p.relative_to(ROOT).as_posix() for p in numbered_chapters() if p.stem == chapter),
                f"book/{chapter}.ipynb")
    cells = _split_exercise_headings(nb.cells)
    kept: List[nbformat.NotebookNode] = []
    predicts = 0
    for i, cell in enumerate(cells):
        tags = _tags(cell)
        if "remove-cell" in tags or "predict-solution" in tags:
            continue
        if cell.cell_type == "code":
            if "remove-input" in tags:
                later = set().union(*[_used_names(c.source) for c in cells[i + 1:] if c.cell_type == "code"])
                if not (_bound_names(cell.source) & later):
                    continue
                cell.metadata.setdefault("jupyter", {})["source_hidden"] = True
            if "remove-output" in tags:
                cell.outputs = []
            if "predict-stub" in tags:
                predicts += 1
                cell.outputs = []
                if not cell.source.startswith(PREDICT_NOTE):
                    cell.source = PREDICT_NOTE + cell.source
            elif "predict-check" in tags:
                cell.outputs = []
                cell.source = _run_all_safe(cell.source)
            elif "predict-measure" in tags:
                cell.outputs = []
            if not cell.source.strip():
                continue
        elif cell.cell_type == "markdown":
            cell.source = render_book_roles(cell.source, path, bib, base)
            if PREDICT_REVEAL in tags or "{dropdown}" in cell.source:
                cell.source = _dropdown_to_details(cell.source)
        kept.append(cell)
    _drop_unused_show_source(kept)
    kept = [c for c in kept if c.cell_type != "code" or c.source.strip()]
    _mark_book_numbers(kept, nb)
    _add_answer_cells(kept, chapter, reveal)
    setup = next((c for c in kept if c.cell_type == "code" and c.source.startswith(SETUP_MARK)), None)
    if setup is not None:
        kept.remove(setup)
        banner = next((i for i, c in enumerate(kept) if c.cell_type == "markdown" and c.source == BANNER), 0)
        kept.insert(banner + 1, setup)
    nb.cells = kept
    return predicts


def _mark_book_numbers(cells: List[nbformat.NotebookNode], nb: nbformat.NotebookNode) -> None:
    """Say, in each markdown cell that had glued numbers, that they are the book's run."""
    for cell in cells:
        if cell.cell_type == "markdown" and cell.metadata.get("student_glued") and STUDENT_NB_NOTE not in cell.source:
            cell.source = cell.source.rstrip("\n") + "\n\n" + STUDENT_NB_NOTE
        cell.metadata.pop("student_glued", None)


def _add_answer_cells(cells: List[nbformat.NotebookNode], chapter: str, reveal: str) -> None:
    """An answer cell (and, folded, the model answer) after each discussion exercise and its scaffold."""
    if reveal not in ("folded", "none"):
        raise ValueError(f"assignments: expected reveal 'folded' or 'none', got {reveal!r}")
    probe = nbformat.v4.new_notebook(cells=cells)
    for index, number, title in sorted(discussion_exercises(probe), key=lambda t: -t[0]):
        at = index + 1
        while at < len(cells) and SCAFFOLD_TAG in _tags(cells[at]):
            at += 1
        answer = nbformat.v4.new_markdown_cell(ANSWER_CELL.format(number=number))
        answer.metadata["tags"] = ["discussion-answer"]
        new = [answer]
        rubric = RUBRICS.get((chapter, number))
        if reveal == "folded" and rubric is not None:
            new.append(nbformat.v4.new_markdown_cell(_details(REVEAL_SUMMARY, _model_answer(rubric))))
        cells[at:at] = new


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
        coded_last = nxt is not None and bool(_tags(nxt) & CODED_STARTS)
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
