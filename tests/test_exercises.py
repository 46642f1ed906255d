"""CI proof of the exercises: in every chapter, each stub fails its check and each solution passes.

An exercise is three code cells in this order (CONTRIBUTING.md §6): ``exercise-stub``,
``exercise-solution`` (+ ``hide-input``) and ``exercise-check`` (one ``checks.check_<name>(<name>)``
call of a registered check). Each triple runs in fresh namespaces: stub + check must raise
``AssertionError``; solution + check must pass. The structure test fails if a chapter in
``_toc.yml`` has no exercise, if a stub lacks its solution or check, or if a check cell calls a
function that is not a registered check.
"""
from __future__ import annotations

import ast
import importlib.util
import pathlib
import re
import sys
from dataclasses import dataclass
from typing import List, Optional, Tuple

import nbformat
import pytest

from tutorial_lib.checks import REGISTRY, run_check

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from notebooks import numbered_chapters  # noqa: E402

CHAPTERS = numbered_chapters()  # appendix pages have no exercises
ROLES = ("exercise-stub", "exercise-solution", "exercise-check")


@dataclass
class Exercise:
    chapter: str
    index: int  # 1-based within the chapter
    stub: str
    solution: str
    check: str
    check_name: str  # the registered check's name (REGISTRY key)
    check_output: str = ""  # what the check cell printed when the chapter was executed

    @property
    def id(self) -> str:
        return f"{pathlib.Path(self.chapter).stem}-ex{self.index}-{self.check_name}"


def _role(cell: nbformat.NotebookNode) -> Optional[str]:
    tags = set(cell.get("metadata", {}).get("tags", []))
    found = [r for r in ROLES if r in tags]
    return found[0] if len(found) == 1 else ("conflict" if found else None)


def called_check(source: str) -> Tuple[Optional[str], Optional[str]]:
    """``(check function name, argument name)`` of the single ``check_*`` call in a check cell."""
    calls = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name.startswith("check_"):
                arg = node.args[0].id if node.args and isinstance(node.args[0], ast.Name) else None
                calls.append((name, arg))
    return calls[0] if len(calls) == 1 else (None, None)


def _defines(source: str, name: str) -> bool:
    tree = ast.parse(source)
    return any(isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == name for n in tree.body)


def scan(nb: nbformat.NotebookNode, chapter: str = "<notebook>") -> Tuple[List[Exercise], List[str]]:
    """The exercises of a notebook and the problems of its exercise cells (empty when well formed)."""
    by_func = {check.func.__name__: name for name, check in REGISTRY.items()}
    exercises: List[Exercise] = []
    problems: List[str] = []
    cells = [(i, c, _role(c)) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    tagged = [(i, c, r) for i, c, r in cells if r is not None]
    k = 0
    while k < len(tagged):
        i, cell, role = tagged[k]
        if role != "exercise-stub":
            problems.append(f"cell {i}: {role} cell without a preceding exercise-stub")
            k += 1
            continue
        roles = [r for _, _, r in tagged[k:k + 3]]
        if roles != list(ROLES):
            problems.append(f"cell {i}: exercise-stub must be followed by exercise-solution and "
                            f"exercise-check cells, got {roles[1:]}")
            k += 1
            continue
        (_, stub, _), (j, solution, _), (m, check, _) = tagged[k:k + 3]
        k += 3
        if "hide-input" not in solution.metadata.get("tags", []):
            problems.append(f"cell {j}: exercise-solution needs the hide-input tag too")
        func_name, arg = called_check(check.source)
        if func_name is None:
            problems.append(f"cell {m}: an exercise-check cell must make exactly one checks.check_<name>(...) call")
            continue
        if func_name not in by_func:
            problems.append(f"cell {m}: {func_name} is not a registered check (see tutorial_lib/checks)")
            continue
        name = by_func[func_name]
        for what, cell_ in (("stub", stub), ("solution", solution)):
            if arg is None or not _defines(cell_.source, arg) or arg not in REGISTRY[name].names:
                problems.append(f"{what} of exercise {len(exercises) + 1}: must define {arg!r}, one of the "
                                f"names check {name!r} grades {REGISTRY[name].names}")
        printed = "".join(o.get("text", "") for o in check.get("outputs", []) if o.get("output_type") == "stream")
        exercises.append(Exercise(chapter, len(exercises) + 1, stub.source, solution.source, check.source, name,
                                  printed))
    return exercises, problems


def exercises_of(nb: nbformat.NotebookNode) -> List[Exercise]:
    return scan(nb)[0]


def _all_exercises() -> List[Exercise]:
    found: List[Exercise] = []
    for path in CHAPTERS:
        found += scan(nbformat.read(path, as_version=4), str(path.relative_to(ROOT)))[0]
    return found


EXERCISES = _all_exercises()


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_exercises_well_formed(path: pathlib.Path) -> None:
    exercises, problems = scan(nbformat.read(path, as_version=4))
    assert not problems, "\n".join(problems)
    assert exercises, f"{path.relative_to(ROOT)} has no exercise (CONTRIBUTING.md §6)"


def _run(source: str, check: str) -> None:
    namespace: dict = {"__name__": "__main__"}
    exec(compile(source, "<exercise>", "exec"), namespace)
    exec(compile(check, "<check>", "exec"), namespace)


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: e.id)
def test_stub_fails_its_check(ex: Exercise, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(AssertionError):
        _run(ex.stub, ex.check)
    assert "✗" in capsys.readouterr().out  # the student sees readable feedback


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: e.id)
def test_solution_passes_its_check(ex: Exercise, capsys: pytest.CaptureFixture) -> None:
    _run(ex.solution, ex.check)
    # The chapter's stored output of the check cell (compared by nbval) is still what it prints, up to
    # the number of cases: a check that gains cases prints a new count, which the chapter's next
    # execution stores (nbval then compares it exactly).
    count = re.compile(r"all \d+ checks passed")
    assert count.sub("all N checks passed", capsys.readouterr().out) == \
        count.sub("all N checks passed", ex.check_output)


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: e.id)
def test_solution_passes_on_an_instructors_private_cases(ex: Exercise) -> None:
    """A private seed changes the random cases, never what a correct answer must do."""
    from tutorial_lib.checks import _core

    _core.set_private_seed(20261129)
    try:
        _run(ex.solution, ex.check)
    finally:
        _core.set_private_seed(None)


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: e.id)
def test_solution_is_not_flagged_as_a_copy_of_the_library(ex: Exercise) -> None:
    """The book's own solution is not the library's code (the grader would flag it for the instructor).

    That no solution *uses* the library's implementation is shown by grading them all in the
    grader's sandbox, whose student edition lacks every graded component
    (tests/test_autograder.py::test_book_solutions_score_full)."""
    from tutorial_lib.grader.similarity import similar_components

    assert similar_components(ex.solution, REGISTRY[ex.check_name].forbid) == {}


# -- the catalogue of wrong answers (tests/fixtures/wrong_answers) ------------------------------
WRONG_DIR = ROOT / "tests" / "fixtures" / "wrong_answers"


def _catalogue() -> List[Tuple[str, str, str, str]]:
    entries = []
    for path in sorted(WRONG_DIR.glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"wrong_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        for label, words, source in module.WRONG:
            entries.append((module.CHECK, label, words, source))
    return entries


CATALOGUE = _catalogue()


def test_every_checked_exercise_has_three_wrong_answers() -> None:
    checked = {ex.check_name for ex in EXERCISES}
    counts = {name: sum(1 for c, *_ in CATALOGUE if c == name) for name in checked}
    assert all(n >= 3 for n in counts.values()), {k: v for k, v in counts.items() if v < 3}


@pytest.mark.parametrize("check, label, words, source", CATALOGUE, ids=[f"{c}-{l}" for c, l, *_ in CATALOGUE])
def test_wrong_answer_fails_with_a_diagnosis(check: str, label: str, words: str, source: str) -> None:
    namespace: dict = {"__name__": "__main__"}
    exec(compile(source, f"<wrong answer {label}>", "exec"), namespace)
    name = next(n for n in REGISTRY[check].names if n in namespace)
    report = run_check(check, namespace[name], verbose=False)
    assert report is not None, f"{label}: the check passed a wrong answer"
    assert "not implemented" not in report
    assert words in report, f"{label}: the report does not diagnose it ({words!r}):\n{report}"


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: e.id)
def test_stub_is_reported_as_not_implemented(ex: Exercise, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(AssertionError):
        _run(ex.stub, ex.check)
    assert "not implemented" in capsys.readouterr().out


# -- the scanner itself catches malformed exercises ------------------------------------------
def _cell(source: str, *tags: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = list(tags)
    return cell


STUB = "def mean_iou(pred, target, num_classes, ignore_index=255):\n    raise NotImplementedError\n"
SOLUTION = ("from tutorial_lib import metrics\n\ndef mean_iou(pred, target, num_classes, ignore_index=255):\n"
            "    return metrics.mean_iou(metrics.confusion_matrix(pred, target, num_classes, ignore_index))\n")
CHECK = "from tutorial_lib import checks\nchecks.check_mean_iou(mean_iou)\n"


def test_scanner_accepts_a_well_formed_exercise() -> None:
    nb = nbformat.v4.new_notebook(cells=[_cell(STUB, "exercise-stub"),
                                         _cell(SOLUTION, "exercise-solution", "hide-input"),
                                         _cell(CHECK, "exercise-check")])
    (ex,), problems = scan(nb)
    assert problems == [] and ex.check_name == "mean_iou"
    with pytest.raises(AssertionError):
        _run(ex.stub, ex.check)
    _run(ex.solution, ex.check)


@pytest.mark.parametrize("cells, problem", [
    ([(STUB, "exercise-stub"), (CHECK, "exercise-check")], "must be followed by exercise-solution"),
    ([(STUB, "exercise-stub")], "must be followed by exercise-solution"),
    ([(STUB, "exercise-stub"), (SOLUTION, "exercise-solution", "hide-input"),
      ("from tutorial_lib import checks\nchecks.check_nonexistent(mean_iou)", "exercise-check")],
     "check_nonexistent is not a registered check"),
    ([(STUB, "exercise-stub"), (SOLUTION, "exercise-solution"), (CHECK, "exercise-check")], "hide-input"),
    ([(SOLUTION, "exercise-solution", "hide-input")], "without a preceding exercise-stub"),
    ([("def other():\n    ...", "exercise-stub"), (SOLUTION, "exercise-solution", "hide-input"),
      (CHECK, "exercise-check")], "stub of exercise 1: must define 'mean_iou'"),
    ([(STUB, "exercise-stub"), (SOLUTION, "exercise-solution", "hide-input"),
      ("from tutorial_lib import checks\nprint('no call')", "exercise-check")], "exactly one"),
])
def test_scanner_reports_malformed_exercises(cells: list, problem: str) -> None:
    nb = nbformat.v4.new_notebook(cells=[_cell(*c) for c in cells])
    _, problems = scan(nb)
    assert any(problem in p for p in problems), problems
