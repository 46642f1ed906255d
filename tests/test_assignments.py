"""make assignments: student notebooks without solutions, with stubs, checks and the setup cell."""
from __future__ import annotations

import pathlib
import sys

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from assignments import STUB_NOTE, main, student_version, write_assignments  # noqa: E402
from notebooks import SETUP_MARK, chapters, setup_source  # noqa: E402

SOLUTION_MARK = "# SOLUTION-ONLY-TEXT"


def _cell(source: str, *tags: str, output: str = "") -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source, execution_count=3)
    cell.metadata["tags"] = list(tags)
    if output:
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=output)]
    return cell


def _chapter() -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# 99 · A chapter\n\nText."),
        _cell(setup_source()),
        _cell("print('figure')", output="figure\n"),
        _cell("def mean_iou(pred, target, num_classes, ignore_index=255):\n    raise NotImplementedError",
              "exercise-stub"),
        _cell(f"def mean_iou(pred, target, num_classes, ignore_index=255):\n    {SOLUTION_MARK}\n    return 1.0",
              "exercise-solution", "hide-input"),
        _cell("from tutorial_lib import checks\nchecks.check_mean_iou(mean_iou)", "exercise-check",
              output="✓ mean IoU: all 7 checks passed\n"),
    ])


def test_student_version_removes_solutions_only() -> None:
    student, exercises = student_version(_chapter())
    assert exercises == 1
    text = nbformat.writes(student)
    assert SOLUTION_MARK not in text and "exercise-solution" not in text
    code = [c for c in student.cells if c.cell_type == "code"]
    assert code[0].source == setup_source()  # the setup cell stays first (it installs on Colab)
    assert code[1].outputs and code[1].outputs[0]["text"] == "figure\n"  # ordinary outputs are kept
    stub, check = code[2], code[3]
    assert stub.source.startswith(STUB_NOTE) and "raise NotImplementedError" in stub.source
    assert stub.metadata["tags"] == ["exercise-stub"] and check.metadata["tags"] == ["exercise-check"]
    assert check.outputs == []  # the committed output showed the solution passing
    assert all(c.execution_count is None for c in code)
    assert "Student version" in student.cells[1].source  # banner right after the title


def test_student_stub_still_fails_its_check(capsys: pytest.CaptureFixture) -> None:
    student, _ = student_version(_chapter())
    namespace: dict = {}
    for cell in student.cells:
        if "exercise-stub" in cell.metadata.get("tags", []):
            exec(cell.source, namespace)
        if "exercise-check" in cell.metadata.get("tags", []):
            with pytest.raises(AssertionError):
                exec(cell.source, namespace)


def test_write_assignments_index_and_guard(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "ch.ipynb"
    nbformat.write(_chapter(), source)
    out = tmp_path / "out"
    written = write_assignments([source], out, colab_base="https://colab.example/github/o/r/blob/main/")
    assert written == [(pathlib.Path("ch.ipynb"), "99 · A chapter", 1)]
    readme = (out / "README.md").read_text()
    assert "| 99 · A chapter | 1 | [Colab](https://colab.example/github/o/r/blob/main/ch.ipynb) |" in readme
    assert SOLUTION_MARK not in (out / "ch.ipynb").read_text()
    write_assignments([source], out)  # regenerating its own folder is fine
    assert "File → Upload notebook" in (out / "README.md").read_text()
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    with pytest.raises(ValueError, match="empty or previously generated"):
        write_assignments([source], precious)
    assert (precious / "thesis.tex").exists()


def test_every_chapter_gets_a_student_version(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--out", str(tmp_path / "a")]) == 0
    assert "student notebooks" in capsys.readouterr().out
    for chapter in chapters():
        rel = chapter.relative_to(ROOT / "book")
        student = nbformat.read(tmp_path / "a" / rel, as_version=4)
        tags = [t for c in student.cells for t in c.metadata.get("tags", [])]
        assert "exercise-solution" not in tags
        first_code = next(c for c in student.cells if c.cell_type == "code")
        assert first_code.source.startswith(SETUP_MARK)
        assert rel.as_posix() in (tmp_path / "a" / "README.md").read_text()
