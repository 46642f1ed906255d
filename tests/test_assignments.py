"""make assignments: student notebooks that work, instructor notebooks with rubrics, assignment files.

The "Done when" of the course kit: no student notebook contains a ``{glue`` placeholder, a solution
or a listing of an exercise's solution; "Run all" runs to the end with unfinished exercises; every
discussion exercise has a rubric in the instructor version; every chapter has an assignment file the
grader reads.
"""
from __future__ import annotations

import inspect
import io
import pathlib
import sys
from contextlib import redirect_stdout

import nbformat
import pytest

from tutorial_lib.checks import REGISTRY
from tutorial_lib.grader.assignment import load_assignment
from pkgutil import resolve_name as resolve

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from assignments import (LISTINGS_KEPT, STUB_NOTE, discussion_exercises, format_glued, main,  # noqa: E402
                         render_glue, student_version, write_assignments)
from grade_rubrics import RUBRICS  # noqa: E402
from notebooks import SETUP_MARK, numbered_chapters, setup_source  # noqa: E402

SOLUTION_MARK = "# SOLUTION-ONLY-TEXT"

KIT_CHAPTERS = numbered_chapters()  # what tools/assignments.py covers


def _cell(source: str, *tags: str, output: str = "") -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source, execution_count=3)
    cell.metadata["tags"] = list(tags)
    if output:
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=output)]
    return cell


def _glue_cell(name: str, value: str) -> nbformat.NotebookNode:
    cell = _cell("glue(...)")
    cell.outputs = [nbformat.v4.new_output(
        "display_data", data={"application/papermill.record/text/plain": value},
        metadata={"scrapbook": {"name": name, "mime_prefix": "application/papermill.record/"}})]
    return cell


def _chapter() -> nbformat.NotebookNode:
    listing = _cell("from tutorial_lib import metrics\nshow_source(metrics.iou_per_class)\nx = 1")
    listing.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "def iou_per_class",
                                                                       "text/html": "<pre>def</pre>"})]
    return nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# 99 · A chapter\n\nText."),
        _cell(setup_source()),
        _cell("print('figure')", output="figure\n"),
        _glue_cell("ratio", "0.1120876736111111"),
        _glue_cell("count", "945462"),
        nbformat.v4.new_markdown_cell("A ratio of {glue:text}`ratio:.3f` and {glue:text}`count:,` weights."),
        listing,
        nbformat.v4.new_markdown_cell("## Exercises\n\n### Exercise 1 — mean IoU"),
        _cell("def mean_iou(pred, target, num_classes, ignore_index=255):\n    raise NotImplementedError",
              "exercise-stub"),
        _cell(f"def mean_iou(pred, target, num_classes, ignore_index=255):\n    {SOLUTION_MARK}\n    return 1.0",
              "exercise-solution", "hide-input"),
        _cell("from tutorial_lib import checks\nchecks.check_mean_iou(mean_iou)", "exercise-check",
              output="✓ mean IoU: all 6 checks passed\n"),
        nbformat.v4.new_markdown_cell("### Exercise 2 — a discussion\n\nWhy?"),
    ])


def test_student_version_removes_solutions_only() -> None:
    student, exercises = student_version(_chapter())
    assert exercises == 1
    text = nbformat.writes(student)
    assert SOLUTION_MARK not in text and "exercise-solution" not in text
    code = [c for c in student.cells if c.cell_type == "code"]
    assert code[0].source == setup_source()  # the setup cell stays first (it installs on Colab)
    assert code[1].outputs and code[1].outputs[0]["text"] == "figure\n"  # ordinary outputs are kept
    stub, check = [c for c in code if {"exercise-stub", "exercise-check"} & set(c.metadata.get("tags", []))]
    assert stub.source.startswith(STUB_NOTE) and "raise NotImplementedError" in stub.source
    assert stub.metadata["tags"] == ["exercise-stub"] and check.metadata["tags"] == ["exercise-check"]
    assert check.outputs == []  # the committed output showed the solution passing
    assert all(c.execution_count is None for c in code)
    assert "Student version" in student.cells[1].source  # banner right after the title


def test_glued_numbers_are_rendered_into_the_text() -> None:
    student, _ = student_version(_chapter())
    prose = "\n".join(c.source for c in student.cells if c.cell_type == "markdown")
    assert "A ratio of 0.112 and 945,462 weights." in prose and "{glue" not in prose
    from myst_nb.core.variables import format_plain_text  # what the book build renders

    for text, spec in (("'SegFormer'", ""), ("13", "d"), ("945462", ","), ("0.4915124699388067", ".2f"),
                       ("3.32", ""), ("75.71768760681152", ".0f"), ("13.0", ".1f"), ("'a b'", "s")):
        assert format_glued(text, spec) == format_plain_text(text, spec)
    broken = _chapter()
    broken.cells[5].source += " {glue:text}`nowhere:.2f`"
    with pytest.raises(ValueError, match="expected a stored glue output named 'nowhere'"):
        render_glue(broken, "99_chapter")


def test_listing_of_the_exercised_component_is_removed() -> None:
    student, _ = student_version(_chapter())
    cell = next(c for c in student.cells if "x = 1" in c.source)
    assert "show_source" not in cell.source and cell.outputs == []
    note = student.cells[student.cells.index(cell) + 1]
    assert note.cell_type == "markdown" and "`metrics.iou_per_class` is removed" in note.source


def test_run_all_runs_to_the_end_with_a_stub(capsys: pytest.CaptureFixture) -> None:
    """Every exercise cell, in order, as "Run all" does: the failing check prints and does not stop."""
    student, _ = student_version(_chapter())
    namespace: dict = {}
    for cell in student.cells:
        if set(cell.metadata.get("tags", [])) & {"exercise-stub", "exercise-check"}:
            exec(cell.source, namespace)  # raises nothing
    assert "mean_iou is not implemented yet" in capsys.readouterr().out


def test_write_assignments_layout_index_and_guard(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "ch.ipynb"
    nbformat.write(_chapter(), source)
    out = tmp_path / "out"
    import grade_rubrics

    grade_rubrics.RUBRICS[("ch", 2)] = "Because."
    try:
        written = write_assignments([source], out, colab_base="https://colab.example/github/o/r/blob/main/")
    finally:
        del grade_rubrics.RUBRICS[("ch", 2)]
    assert written == [(pathlib.Path("ch.ipynb"), "99 · A chapter", 1)]
    readme = (out / "student" / "README.md").read_text()
    assert "| 99 · A chapter | 1 | [Colab](https://colab.example/github/o/r/blob/main/ch.ipynb) |" in readme
    assert SOLUTION_MARK not in (out / "student" / "ch.ipynb").read_text()
    instructor = (out / "instructor" / "ch.ipynb").read_text()
    assert SOLUTION_MARK in instructor and "Answer key and rubric — Exercise 2" in instructor
    assignment = load_assignment(out / "instructor" / "ch.toml")
    assert [e.check for e in assignment.exercises] == ["mean_iou"]
    # a private seed drawn for this kit and explicit limits, each with its comment
    assert isinstance(assignment.private_seed, int) and 0 <= assignment.private_seed < 2**31
    assert (assignment.timeout, assignment.run_timeout) == (60, 600)
    toml = (out / "instructor" / "ch.toml").read_text()
    assert "timeout = 60  # seconds per exercise" in toml and "# drawn by tools/assignments.py" in toml
    with pytest.raises(ValueError, match="expected a rubric for ch exercise 2"):
        write_assignments([source], out)  # regenerating its own folder is allowed; a missing rubric is not
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    with pytest.raises(ValueError, match="empty or previously generated"):
        write_assignments([source], precious)
    assert (precious / "thesis.tex").exists()


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("kit") / "a"
    assert main(["--out", str(out)]) == 0
    return out


def _forbidden_first_lines(nb: nbformat.NotebookNode) -> list:
    """The ``def``/``class`` line of each library object the notebook's exercises must not use."""
    lines = []
    for cell in nb.cells:
        if "exercise-check" in cell.metadata.get("tags", []):
            for check in REGISTRY.values():
                if f"{check.func.__name__}(" in cell.source:
                    for path in check.forbid:
                        if path.rpartition(".")[2] not in LISTINGS_KEPT:
                            source = inspect.getsource(resolve(path))
                            lines.append(next(ln for ln in source.splitlines() if ln.startswith(("def ", "class "))))
    return lines


@pytest.mark.parametrize("chapter", KIT_CHAPTERS, ids=lambda p: p.stem)
def test_student_notebooks_have_no_placeholder_solution_or_listing(kit: pathlib.Path, chapter: pathlib.Path) -> None:
    rel = chapter.relative_to(ROOT / "book")
    book = nbformat.read(chapter, as_version=4)
    student = nbformat.read(kit / "student" / rel, as_version=4)
    text = nbformat.writes(student)
    assert "{glue" not in text
    tags = [t for c in student.cells for t in c.metadata.get("tags", [])]
    assert "exercise-solution" not in tags
    first_code = next(c for c in student.cells if c.cell_type == "code")
    assert first_code.source.startswith(SETUP_MARK)
    shown = "\n".join(c.source + "".join(str(o) for o in c.get("outputs", []))
                      for c in student.cells if c.cell_type == "code" and "exercise-stub" not in c.metadata.get("tags", []))
    for line in _forbidden_first_lines(book):
        assert line not in shown, f"{rel}: the listing of {line!r} survived"
    elsewhere = "\n".join(c.source for c in book.cells if "exercise-solution" not in c.metadata.get("tags", []))
    student_code = "\n".join(c.source for c in student.cells)
    for cell in book.cells:
        if "exercise-solution" in cell.metadata.get("tags", []):
            body = [ln for ln in cell.source.splitlines()  # distinctive lines of the solution
                    if ln.startswith("    ") and len(ln.strip()) > 20 and ln not in elsewhere]
            assert not [ln for ln in body if ln in student_code], f"{rel}: a solution line survived"
    assert rel.as_posix() in (kit / "student" / "README.md").read_text()


@pytest.mark.parametrize("chapter", KIT_CHAPTERS, ids=lambda p: p.stem)
def test_instructor_notebooks_have_solutions_rubrics_and_an_assignment(kit: pathlib.Path,
                                                                     chapter: pathlib.Path) -> None:
    rel = chapter.relative_to(ROOT / "book")
    book = nbformat.read(chapter, as_version=4)
    instructor_nb = nbformat.read(kit / "instructor" / rel, as_version=4)
    instructor = "\n".join(c.source for c in instructor_nb.cells)
    assert "{glue" not in instructor and "do not distribute" in instructor
    for _, number, _ in discussion_exercises(book):
        assert f"Answer key and rubric — Exercise {number} " in instructor
        assert "Rubric (4 points)" in RUBRICS[(chapter.stem, number)]
    assignment = load_assignment((kit / "instructor" / rel).with_suffix(".toml"))
    solutions = [c for c in book.cells if "exercise-solution" in c.metadata.get("tags", [])]
    assert len(assignment.exercises) == len(solutions) and all(c.source in instructor for c in solutions)


def test_every_rubric_belongs_to_a_discussion_exercise() -> None:
    found = {(p.stem, n) for p in KIT_CHAPTERS for _, n, _ in discussion_exercises(nbformat.read(p, as_version=4))}
    assert set(RUBRICS) == found and len(found) == 10


def test_rubric_numbers_come_from_the_library() -> None:
    import torch

    from tutorial_lib.layers.efficient_attention import efficient_attention_macs
    from tutorial_lib.layers.overlap_patch_embed import overlap_output_size
    from tutorial_lib.models import setr

    h, w, sizes = 1024, 2048, []
    for k, s in ((7, 4), (3, 2), (3, 2), (3, 2)):
        h, w = overlap_output_size(h, k, s), overlap_output_size(w, k, s)
        sizes.append((h, w))
    assert sizes == [(256, 512), (128, 256), (64, 128), (32, 64)] and 256 * 512 == 8 * 128 * 128 == 131072

    def crossing(dim: int, sr: int) -> int:
        side = sr
        while 2 * side**2 * (side // sr) ** 2 * dim <= efficient_attention_macs(side, side, dim, sr) - \
                2 * side**2 * (side // sr) ** 2 * dim:
            side += sr
        return side

    assert (crossing(32, 8), crossing(256, 1)) == (56, 23)
    with torch.device("meta"):
        parts = setr.setr_pup("base", num_classes=150, img_size=512).param_breakdown()
    assert (parts["encoder (ViT)"], parts["main head"], parts["auxiliary heads"], parts["unused conv_seg"],
            parts["total"]) == (86_433_024, 3_582_102, 7_241_304, 384_750, 97_641_180)
    text = RUBRICS[("07_setr", 3)] + RUBRICS[("08_overlap_patch_embed", 2)] + RUBRICS[("09_efficient_attention", 2)]
    for number in ("86,433,024", "3,582,102", "7,241,304", "384,750", "97,641,180", "131,072", "**56**", "**23**"):
        assert number in text

    # 06: attention is half of a ViT-L block at N = 6D tokens, whatever the heads
    from tutorial_lib.models.vit import Block
    from tutorial_lib.profiling import count_macs

    for heads in (16, 8):
        with torch.device("meta"):
            block = Block(1024, heads)
            tokens = torch.empty(1, 6144, 1024)
        ops = count_macs(block, tokens).by_operator
        assert ops["scaled_dot_product_attention"] == ops["linear"]
    assert "$N = 6D = 6144$ tokens" in RUBRICS[("06_vit_patching", 3)]
    # 10: the chapter's probe with circular padding: one distinct vector, R² about 0
    from tutorial_lib import checks

    zeros, circular = (checks.position_probe(m) for m in ("zeros", "circular"))
    assert zeros["distinct"] == 81 and circular["distinct"] == 1
    assert abs(circular["r2"]) < 0.05
    answer = RUBRICS[("10_mix_ffn", 2)]
    assert "stays 1" in answer and "drops to about 0" in answer
    # 13: the image bound at 64 px: the 90 % radius of a uniform map (uniform_r90)
    from tutorial_lib.erf import erf_radius

    assert round(erf_radius(torch.ones(64, 64), 0.9)) == 36
    answer = RUBRICS[("13_receptive_fields", 3)]
    assert "90 % radius of about 36 px" in answer
    assert "same_scale_scenes(4, num_samples=8)" in answer

# -- the clean student build (issue #25) ---------------------------------------------------------------
import ast  # noqa: E402
import importlib.util  # noqa: E402
import re  # noqa: E402

from assignments import (ANSWER_CELL, BANNER, PREDICT_NOTE, STUDENT_NB_NOTE, book_base_url,  # noqa: E402
                         _only_imports, clean_student_build, render_book_roles)

sys.path.insert(0, str(ROOT / "tools" / "exercise_cells"))
from _cells import CODE_WIDTH  # noqa: E402
from insert import definitions, differences, insert, refresh  # noqa: E402

#: any MyST role (``{cite}`...```, ``{glue:text}`...```, ...) or directive
BOOK_ONLY = re.compile(r"\{[a-z][a-z-]*(:[a-z-]+)?\}`|^(```+|:::+)\{", re.M)
RELATIVE = re.compile(r"\]\((?!https?://|#|mailto:)[^)]*\.(ipynb|md)")
RELATIVE_HREF = re.compile(
    r"href=[\"'](?!https?://|#|mailto:)[^\"']*\.(ipynb|md|html)"
)


def _student(path: pathlib.Path, with_new_cells: bool = False) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    if with_new_cells:
        insert(nb, path.stem)
    return student_version(nb, path.stem)[0]


@pytest.mark.parametrize("with_new_cells", [False, True], ids=["as-is", "with-exercise-cells"])
@pytest.mark.parametrize("chapter", KIT_CHAPTERS, ids=lambda p: p.stem)
def test_student_build_is_clean(chapter: pathlib.Path, with_new_cells: bool) -> None:
    """Walk a student notebook built from the current chapter (and with tools/exercise_cells inserted)."""
    nb = _student(chapter, with_new_cells)
    original = nbformat.read(chapter, as_version=4)
    base = book_base_url()
    code = [c for c in nb.cells if c.cell_type == "code"]
    # the setup cell first: right after the title and the banner
    assert code[0].source.startswith(SETUP_MARK) and nb.cells.index(code[0]) <= 2
    assert nb.cells[nb.cells.index(code[0]) - 1].source == BANNER
    book_imports = {
        c.source
        for c in original.cells
        if c.cell_type == "code" and _only_imports(c.source)
    }
    for cell in nb.cells:
        tags = set(cell.metadata.get("tags", []))
        assert not tags & {"exercise-solution", "predict-solution", "remove-cell"}, cell.source[:80]
        assert cell.source.strip(), f"an empty {cell.cell_type} cell"
        if cell.cell_type == "code":
            if "remove-input" in tags:  # kept only because a later cell needs a name it binds
                assert cell.metadata.get("jupyter", {}).get("source_hidden")
            # a cell left with only imports (its listing removed) is vestigial
            assert not _only_imports(cell.source) or cell.source in book_imports, (
                cell.source
            )
        else:
            assert not BOOK_ONLY.search(cell.source), BOOK_ONLY.search(cell.source).group(0)
            assert not RELATIVE.search(cell.source), RELATIVE.search(cell.source).group(0)
            href = RELATIVE_HREF.search(cell.source)
            assert not href, href.group(0)
            for url in re.findall(r"\]\((https?://[^)\s]+\.html[^)\s]*)\)", cell.source):
                if "github.io" in url:
                    assert url.startswith(base)
    # no unused show_source import
    if not any(re.search(r"\bshow_source\s*\(", c.source) for c in code):
        assert not any("show_source" in c.source for c in code)
    # numbers glued into the prose are labelled as the book's run
    glued = sum("{glue" in c.source for c in original.cells if c.cell_type == "markdown")
    assert (sum(STUDENT_NB_NOTE in c.source for c in nb.cells) > 0) == (glued > 0)
    # every discussion exercise: an answer cell after its text and scaffold, then the folded model answer
    for index, number, _ in discussion_exercises(nb):
        at = index + 1
        while "discussion-scaffold" in nb.cells[at].metadata.get("tags", []):
            assert nb.cells[at].cell_type == "code"
            at += 1
        assert nb.cells[at].source == ANSWER_CELL.format(number=number)
        assert nb.cells[at + 1].source.startswith("<details>")
    if with_new_cells:
        stubs = [c for c in code if "predict-stub" in c.metadata.get("tags", [])]
        checks_ = [c for c in code if "predict-check" in c.metadata.get("tags", [])]
        assert len(stubs) == 1 and stubs[0].source.startswith(PREDICT_NOTE) and "..." in stubs[0].source
        assert len(checks_) == 1 and "except AssertionError" in checks_[0].source
        assert any(c.cell_type == "markdown" and c.source.startswith("<details>") and "predicted" in c.source
                   for c in nb.cells)


def test_book_roles_are_rendered_for_a_notebook_outside_the_book() -> None:
    bib = {"xie2021segformer": "Xie et al., 2021", "chen2018deeplabv3plus": "Chen et al., 2018"}
    base = "https://example.github.io/repo/"
    out = render_book_roles("as {cite}`xie2021segformer,chen2018deeplabv3plus` show; see "
                            "[chapter 05](../deeplab/05_deeplabv3plus.ipynb#the-decoder) and "
                            "[04](04_aspp.ipynb); run `make experiments`.",
                            "book/segformer/10_mix_ffn.ipynb", bib, base)
    assert "(Xie et al., 2021; Chen et al., 2018)" in out
    assert f"]({base}book/deeplab/05_deeplabv3plus.html#the-decoder)" in out
    assert f"]({base}book/segformer/04_aspp.html)" in out
    assert "clone of the book's repository" in out
    assert book_base_url() == "https://seg-step-by-step.github.io/segmentation-architectures/"


def test_remove_input_cells_are_dropped_unless_a_later_cell_needs_them() -> None:
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_markdown_cell(BANNER),
        _cell(setup_source(), "hide-input"),
        _cell("sentence = 'for the prose'\nglue('x', 1)", "remove-input"),
        _cell("needed = 3", "remove-input"), _cell("print(needed)"), _cell("secret = 1", "remove-cell"),
        _cell(""),
    ])
    clean_student_build(nb, "notebook")
    sources = [c.source for c in nb.cells]
    assert "needed = 3" in sources and not any("prose" in s or "secret" in s for s in sources)
    assert all(s.strip() for s in sources)


@pytest.mark.parametrize("chapter", KIT_CHAPTERS, ids=lambda p: p.stem)
def test_predict_then_measure_cells_run_stub_fails_solution_passes(chapter: pathlib.Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    """Every chapter's predict-then-measure exercise: with the stub the check reports "not implemented"
    (and "Run all" goes on in the student build); with the book's prediction it passes."""
    cells = definitions(chapter.stem).PREDICT
    by_tag = {t: c["source"] for c in cells for t in c["tags"]}
    assert {"predict-stub", "predict-solution", "predict-measure", "predict-check", "predict-reveal"} <= set(by_tag)
    assert cells[0]["source"].startswith("### Exercise {n} — predict, then measure")
    namespace: dict = {"__name__": "__main__"}
    exec(by_tag["predict-stub"], namespace)
    exec(by_tag["predict-measure"], namespace)
    with pytest.raises(AssertionError, match="not implemented"):
        exec(by_tag["predict-check"], namespace)
    exec(by_tag["predict-solution"], namespace)
    exec(by_tag["predict-check"], namespace)
    assert "✓" in capsys.readouterr().out
    for exercise, specs in definitions(chapter.stem).SCAFFOLDS.items():
        for spec in specs:
            ast.parse(spec["source"])
            assert "MixFFN(" not in spec["source"]  # never the name a student's stub shadows


def test_the_circular_padding_scaffold_runs_on_the_librarys_class_even_when_shadowed(capsys) -> None:
    (spec,) = definitions("10_mix_ffn").SCAFFOLDS[2]
    namespace: dict = {"__name__": "__main__"}
    exec("class MixFFN:\n    def __init__(self, *a):\n        raise NotImplementedError\n", namespace)  # the stub
    exec(spec["source"], namespace)
    out = capsys.readouterr().out
    assert "circular  distinct token vectors: 1," in out and "zeros" in out


def test_inserting_exercise_cells_is_idempotent_and_numbers_the_exercise() -> None:
    path = next(p for p in KIT_CHAPTERS if p.stem == "11_all_mlp_decoder")
    nb = nbformat.read(path, as_version=4)
    # the chapter as it was before its pass: the inserted cells taken out
    nb.cells = [c for c in nb.cells if "exercise_cells" not in c.metadata]
    assert insert(nb, path.stem) and not insert(nb, path.stem)
    heads = [m.group(1) for c in nb.cells if c.cell_type == "markdown"
             for m in re.finditer(r"^### Exercise (\d+)", c.source, re.M)]
    assert heads == ["1", "2", "3", "4"]
    assert nb.cells[-6].source.startswith("### Exercise 4 — predict, then measure")


@pytest.mark.parametrize("chapter", KIT_CHAPTERS, ids=lambda p: p.stem)
def test_exercise_cells_fit_the_column_and_reproduce_the_chapter(
    chapter: pathlib.Path,
) -> None:
    """The definitions in tools/exercise_cells are the source of the chapters'
    inserted cells: their code fits the book's code column, and inserting them again
    reproduces the chapter's cells exactly (source, tags, order), so that a
    re-insert cannot undo a fix made in a chapter."""
    module = definitions(chapter.stem)
    scaffolds = [s for cells in module.SCAFFOLDS.values() for s in cells]
    for spec in list(module.PREDICT) + scaffolds:
        if spec["cell_type"] == "code":
            lines = spec["source"].splitlines()
            wide = [ln for ln in lines if len(ln) > CODE_WIDTH]
            assert not wide, f"{chapter.stem}: over {CODE_WIDTH} columns: {wide}"
    found = differences(nbformat.read(chapter, as_version=4), chapter.stem)
    assert not found, (
        f"{chapter.stem}: {found}; run tools/exercise_cells/insert.py --refresh "
        f"{chapter.relative_to(ROOT)} and re-execute the chapter"
    )


def _inserted_cell(nb: nbformat.NotebookNode, role: str) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if c.metadata.get("exercise_cells", "") == role)


def test_refresh_keeps_the_outputs_of_code_whose_syntax_is_unchanged() -> None:
    path = next(p for p in KIT_CHAPTERS if p.stem == "08_overlap_patch_embed")
    nb = nbformat.read(path, as_version=4)
    scaffold = _inserted_cell(nb, f"{path.stem}:scaffold-2")
    stub = next(c for c in nb.cells if "predict-stub" in c.metadata.get("tags", []))
    # a comment changes in the scaffold, code in the prediction stub
    scaffold.source = scaffold.source.replace("# A start", "#   A start")
    stub.source += "\nextra = 1"
    stub.outputs = [nbformat.v4.new_output("stream", name="stdout", text="old\n")]
    assert differences(nb, path.stem) and refresh(nb, path.stem)
    assert not differences(nb, path.stem) and not refresh(nb, path.stem)
    scaffold = _inserted_cell(nb, f"{path.stem}:scaffold-2")
    stub = next(c for c in nb.cells if "predict-stub" in c.metadata.get("tags", []))
    assert scaffold.outputs and scaffold.outputs[0]["text"].startswith("(256, 512)")
    assert stub.outputs == []


def test_a_cell_left_with_only_imports_hands_them_on() -> None:
    """A listing's cell left with nothing but imports goes; each import moves to the
    first later cell that uses it, or goes too."""
    nb = _chapter()
    at = next(i for i, c in enumerate(nb.cells) if "show_source(" in c.source)
    nb.cells[at].source = (
        "from tutorial_lib import metrics\nimport math\n"
        "show_source(metrics.iou_per_class)"
    )
    nb.cells.insert(at + 1, _cell("print(metrics.mean_iou)"))
    student, _ = student_version(nb)
    sources = [c.source for c in student.cells]
    assert "from tutorial_lib import metrics\n\nprint(metrics.mean_iou)" in sources
    assert not any("import math" in s for s in sources)  # used by no later cell
    note = next(i for i, s in enumerate(sources) if "is removed here" in s)
    assert "import" not in sources[note - 1]


def test_the_student_run_fails_on_errors_and_on_checks_that_pass_a_stub() -> None:
    """What tools/colab_check.py --students (make test-students) counts as a failure
    in an executed student notebook."""
    from colab_check import student_problems

    ok = _cell(
        "try:\n    checks.check_mean_iou(mean_iou)\n"
        "except AssertionError:\n    pass",
        "exercise-check",
        output="✗ mean IoU: 1 problem(s)\n  - mean_iou is not implemented yet\n",
    )
    silent = _cell("checks.check_mean_iou(mean_iou)", "exercise-check", output="✓")
    broken = _cell("print(undefined)")
    error = dict(ename="NameError", evalue="name 'undefined' is not defined")
    broken.outputs = [nbformat.v4.new_output("error", traceback=[], **error)]
    title = nbformat.v4.new_markdown_cell("# T")
    executed = nbformat.v4.new_notebook(cells=[title, ok, silent, broken])
    problems = student_problems(executed)
    assert len(problems) == 2
    assert problems[0].startswith("cell 2 (a check) did not report its stub")
    assert problems[1] == "cell 3: NameError: name 'undefined' is not defined"
    assert student_problems(nbformat.v4.new_notebook(cells=[ok])) == []
