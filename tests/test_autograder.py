"""The autograder scores sample submissions as expected and never crashes on a bad one."""
from __future__ import annotations

import json
import pathlib

import nbformat
import pytest

from tutorial_lib.checks import REGISTRY, register
from tutorial_lib.checks.grade import (GraderError, format_table, grade_submission, load_submission,
                                       strip_magics)

SUBMISSIONS = pathlib.Path(__file__).parent / "fixtures" / "submissions"


def _by_name(report: dict) -> dict:
    return {t["name"]: t for t in report["tests"]}


# -- reading submissions (fast) ---------------------------------------------------------------
def test_strip_magics_keeps_indentation_and_line_numbers() -> None:
    source = 'if x:\n    %pip install foo\n!ls\nfiles = !ls\ny = 1 % 2\n'
    out = strip_magics(source)
    lines = out.splitlines()
    assert len(lines) == 5
    assert lines[1] == "    pass  # removed by the grader"
    assert lines[2].startswith("pass") and lines[3].startswith("pass")
    assert lines[4] == "y = 1 % 2"  # the modulo operator is not a magic
    compile(out, "<test>", "exec")


@pytest.mark.parametrize("magic, kept", [("%%time", True), ("%%capture out", True), ("%%bash", False)])
def test_cell_magics(magic: str, kept: bool) -> None:
    out = strip_magics(f"{magic}\nx = 1\n")
    assert ("x = 1" in out) is kept


def test_notebook_loading_drops_check_cells_and_check_calls() -> None:
    sub = load_submission(SUBMISSIONS / "student_notebook.ipynb")
    code = "\n".join(c["source"] for c in sub.chunks)
    assert sub.kind == "ipynb"
    assert "check_mean_iou" not in code  # the exercise-check cell is gone
    assert "check_confusion_matrix" not in code  # and so is the bare check call in a normal cell
    assert {"mean_iou", "confusion_matrix", "helper"} <= set(sub.symbols)
    labels = [c["label"] for c in sub.chunks]
    assert labels == [f"code cell {n}" for n in (1, 2, 3, 5, 7, 8)]  # cells 4 and 6 are check cells
    for chunk in sub.chunks:
        compile(chunk["source"], chunk["label"], "exec")


def test_exercises_only_keeps_exercise_cells() -> None:
    sub = load_submission(SUBMISSIONS / "student_notebook.ipynb", exercises_only=True)
    assert len(sub.chunks) == 2
    assert sub.symbols == ["mean_iou", "confusion_matrix"]


def test_syntax_error_symbols_found_by_regex(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("def mean_iou(pred, target, num_classes, ignore_index=255):\n    return (\n")
    assert load_submission(path).symbols == ["mean_iou"]


@pytest.mark.parametrize("name, text, match", [
    ("answer.txt", "x", "expected a .py or .ipynb"),
    ("answer.ipynb", "{not json", "is not a Jupyter notebook"),
])
def test_bad_files_are_grader_errors(tmp_path: pathlib.Path, name: str, text: str, match: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(GraderError, match=match):
        load_submission(path)
    with pytest.raises(GraderError, match="cannot read"):
        load_submission(tmp_path / "missing.py")


def test_register_validates() -> None:
    with pytest.raises(ValueError, match="non-empty sequence of identifiers"):
        register("x_bad", names="mean_iou", description="")
    with pytest.raises(ValueError, match="points a positive number"):
        register("x_bad", names=["f"], description="", points=0)
    with pytest.raises(ValueError, match="exists already"):
        register("mean_iou", names=["mean_iou"], description="")(lambda fn: None)


# -- grading (each check in its own process: a few seconds each) --------------------------------
# (a correct, a crashing and a looping submission of a class: tests/test_gradebook.py)
@pytest.mark.slow
def test_partly_wrong_submission_scores_half() -> None:
    report = grade_submission(SUBMISSIONS / "partly_wrong.py")
    tests = _by_name(report)
    assert tests["mean_iou"]["detail"] == "pass"
    assert tests["confusion_matrix"]["detail"] == "fail"
    assert "rows and columns are swapped" in tests["confusion_matrix"]["output"]
    assert (report["score"], report["max_score"]) == (1.0, 2.0)
    table = format_table(report)
    assert "rows and columns" in table and table.splitlines()[-1].split()[-1] == "1/2"


@pytest.mark.slow
def test_class_submission_graded_with_its_hint() -> None:
    """A class (SegFormer's All-MLP decoder) is graded like a function; its mistake gets its hint."""
    if "all_mlp_decoder" not in REGISTRY:
        pytest.skip("the SegFormer decoder check has not landed")
    report = grade_submission(SUBMISSIONS / "class_mistake.py")
    tests = _by_name(report)
    assert tests["all_mlp_decoder"]["symbol"] == "AllMLPDecoder"
    assert tests["all_mlp_decoder"]["detail"] == "fail"
    assert "concatenation order" in tests["all_mlp_decoder"]["output"]
    assert tests["mean_iou"]["detail"] == "pass"
    # partial credit: names and shapes right for the 3 configurations, all 6 logits wrong
    assert "3 of 9 checks passed" in tests["all_mlp_decoder"]["output"]
    assert (report["score"], report["max_score"]) == (1.33, 2.0)


@pytest.mark.slow
def test_crashing_submission_scores_zero_without_crashing_the_grader() -> None:
    report = grade_submission(SUBMISSIONS / "crashing.py")
    tests = _by_name(report)
    assert report["submission"]["status"] == "error"
    assert "RuntimeError" in report["submission"]["errors"][0]["error"]
    assert "line 13" in report["submission"]["errors"][0]["error"]
    assert tests["confusion_matrix"]["detail"] == "crash"  # os._exit inside the check process
    assert "exit code 3" in tests["confusion_matrix"]["output"]
    assert tests["mean_iou"]["detail"] == "missing"  # defined after the crash
    assert "RuntimeError" in tests["mean_iou"]["output"]
    assert report["score"] == 0.0 and report["max_score"] == 2.0


@pytest.mark.slow
@pytest.mark.parametrize("name, feedback", [
    ("looping_top_level.py", "the submission itself exceeded the time limit of 2 s"),
])
def test_endless_loops_time_out(name: str, feedback: str) -> None:
    report = grade_submission(SUBMISSIONS / name, timeout=2)
    (test,) = report["tests"]
    assert test["detail"] == "timeout" and feedback in test["output"]
    assert report["score"] == 0.0


@pytest.mark.slow
def test_student_notebook_continues_after_an_error_cell() -> None:
    report = grade_submission(SUBMISSIONS / "student_notebook.ipynb")
    tests = _by_name(report)
    errors = report["submission"]["errors"]
    assert [e["label"] for e in errors] == ["code cell 7"] and "NameError" in errors[0]["error"]
    assert tests["mean_iou"]["detail"] == "pass"
    assert tests["confusion_matrix"]["detail"] == "fail"
    assert "not implemented yet" in tests["confusion_matrix"]["output"]
    assert report["score"] == 1.0


@pytest.mark.slow
def test_book_solutions_score_full(tmp_path: pathlib.Path) -> None:
    """Every chapter's solutions, as one submission, pass every check the chapters use.

    One notebook with every exercise's solution cell (one grading run instead of one per chapter):
    the grader finds each canonical name and awards full points.
    """
    from test_exercises import EXERCISES

    if not EXERCISES:
        pytest.skip("no chapter has exercises yet")
    cells = [nbformat.v4.new_code_cell(e.solution, metadata={"tags": ["exercise-solution"]}) for e in EXERCISES]
    path = tmp_path / "all_solutions.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    names = sorted({e.check_name for e in EXERCISES})
    report = grade_submission(path, only=names)
    assert report["submission"]["errors"] == []
    assert sorted(t["name"] for t in report["tests"]) == names
    assert all(t["detail"] == "pass" for t in report["tests"]), report["tests"]
    assert report["score"] == report["max_score"] == sum(REGISTRY[n].points for n in names)


def test_cli_exit_codes_and_json(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture) -> None:
    from tutorial_lib.checks.__main__ import main

    assert main(["grade", str(tmp_path / "missing.py")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["grade", str(SUBMISSIONS / "correct.py"), "--check", "no_such_check"]) == 2
    assert "unknown check" in capsys.readouterr().err
    assert main(["list"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in REGISTRY)
    empty = tmp_path / "nothing.py"
    empty.write_text("def unrelated():\n    return 1\n")
    assert main(["grade", str(empty), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["tests"] == [] and report["max_score"] == 0


@pytest.mark.slow
def test_cli_grades_partly_wrong_with_exit_zero(capsys: pytest.CaptureFixture) -> None:
    from tutorial_lib.checks.__main__ import main

    assert main(["grade", str(SUBMISSIONS / "partly_wrong.py"), "--json", "--check", "confusion_matrix"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(t["name"], t["status"]) for t in report["tests"]] == [("confusion_matrix", "failed")]
    assert report["fixed_total"] is True  # --check fixes the exercises: the total does not depend on the file


# -- the instructor page's worked example works as printed ------------------------------------
@pytest.fixture
def course_checks(tmp_path: pathlib.Path):
    """The ``course_checks.py`` block of book/appendix/assignments.md, written to a file."""
    import re

    from tutorial_lib.checks import grade

    page = (pathlib.Path(__file__).parent.parent / "book" / "appendix" / "assignments.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", page, re.S) if b.startswith("# course_checks.py")]
    path = tmp_path / "course_checks.py"
    path.write_text(block)
    before = set(REGISTRY)
    yield path
    for name in set(REGISTRY) - before:  # leave the registry as the other tests expect it
        del REGISTRY[name]
    grade._LOADED.pop(str(path.resolve()), None)


@pytest.mark.slow
def test_instructor_example_check_grades_with_checks_option(course_checks: pathlib.Path,
                                                            tmp_path: pathlib.Path) -> None:
    good = ("def pixel_accuracy(pred, target, ignore_index=255):\n"
            "    keep = target != ignore_index\n"
            "    return float((pred[keep] == target[keep]).float().mean())\n")
    wrong = ("def pixel_accuracy(pred, target, ignore_index=255):\n"
             "    return float((pred == target).float().mean())\n")
    scores = {}
    for name, source in (("good", good), ("wrong", wrong)):
        path = tmp_path / f"{name}.py"
        path.write_text(source)
        report = grade_submission(path, extra_checks=[course_checks])
        (test,) = report["tests"]
        scores[name] = (test["name"], report["score"], report["max_score"])
        if name == "wrong":
            assert "30% of pixels ignored" in test["output"] and "non-ignored pixels only" in test["output"]
    # partial credit: the wrong answer passes the case without ignored pixels, fails the other
    assert scores == {"good": ("pixel_accuracy", 2.0, 2.0), "wrong": ("pixel_accuracy", 1.0, 2.0)}


def test_broken_checks_file_is_a_grader_error(tmp_path: pathlib.Path) -> None:
    from tutorial_lib.checks.grade import load_checks

    broken = tmp_path / "broken_checks.py"
    broken.write_text("raise ImportError('nope')\n")
    with pytest.raises(GraderError, match="failed to import: ImportError: nope"):
        load_checks(broken)
    with pytest.raises(GraderError, match="existing .py file"):
        load_checks(tmp_path / "absent.py")


# -- the red-team review: evasion constructs, copied code, the submission's process --------------
EVASIONS = SUBMISSIONS / "evasions"


@pytest.mark.parametrize("name, construct", [
    ("a01_wrapped", "__wrapped__"), ("a02_reload", "importlib.reload (line 2"),
    ("a03_disarm", "sys.modules (line 2"), ("a04_getsource", "import inspect (line 1"),
    ("a05_exec", "exec() of code that is not a plain literal string (line 3"),
    ("a08_wrapped_simple", "__wrapped__ (the object behind a wrapper) (line 4"),
    ("a16_tamper", "__file__ (the library's files) (line 2"),
])
def test_evasion_constructs_are_found_with_their_line(name: str, construct: str) -> None:
    from tutorial_lib.checks.forbidden import evasions

    found = evasions(load_submission(EVASIONS / f"{name}.py"))
    assert any(construct in f for f in found), found


def test_ordinary_code_is_not_an_evasion(tmp_path: pathlib.Path) -> None:
    from tutorial_lib.checks.forbidden import evasions

    path = tmp_path / "ok.py"
    path.write_text('"""Uses tutorial_lib only through imports."""\n'
                    "import importlib.util\nimport sys\nimport torch\nfrom torch import nn\n"
                    "from tutorial_lib import viz\n"
                    "HAVE = importlib.util.find_spec('transformers') is not None or 'google.colab' in sys.modules\n"
                    "class Net(nn.Module):\n"
                    "    def __init__(self):\n        super().__init__()\n"
                    "        for i in range(2):\n            setattr(self, f'conv_{i}', nn.Conv2d(1, 1, 1))\n"
                    "    def forward(self, x):\n"
                    "        for i in range(2):\n            x = getattr(self, f'conv_{i}')(x)\n        return x\n"
                    "model = torch.compile(Net().eval()) if False else Net().eval()\n"
                    "exec('y = 1')\nprint(f'tutorial_lib {y}')\n"
                    "if __name__ == '__main__':\n    print(model)\n")
    assert evasions(load_submission(path)) == []


def test_an_evasive_submission_is_not_run_and_scores_zero_everywhere() -> None:
    report = grade_submission(EVASIONS / "a03_disarm.py", only=["erf_radius", "mean_iou"])
    assert report["submission"]["status"] == "forbidden" and report["score"] == 0
    assert [t["detail"] for t in report["tests"]] == ["forbidden", "forbidden"]
    assert "sys.modules (line 2 of a03_disarm.py)" in report["tests"][0]["output"]
    assert "not run" in format_table(report)


def test_code_copied_from_the_library_is_found_however_renamed(tmp_path: pathlib.Path) -> None:
    import inspect
    import re

    from tutorial_lib import erf
    from tutorial_lib.checks.forbidden import copied_from_library

    source = "\n\n".join(inspect.getsource(f) for f in (erf._check_map, erf.erf_mass_curve, erf.erf_radius))
    source = re.sub(r'"""[\s\S]*?"""', "", source)  # no docstrings
    source = re.sub(r"\bradii\b", "distances", re.sub(r"\bindex\b", "k", source))  # renamed locals
    path = tmp_path / "copied.py"
    path.write_text("import torch\nfrom typing import Tuple, Optional\n" + source.replace("check_positive", "abs"))
    sub = load_submission(path)
    assert "tutorial_lib.erf.erf_radius" in copied_from_library(sub, "erf_radius", REGISTRY["erf_radius"].forbid)
    report = grade_submission(path, only=["erf_radius"])
    assert report["tests"][0]["detail"] == "forbidden" and "copies the code of" in report["tests"][0]["output"]
    own = SUBMISSIONS / "course" / "alice_correct.py"
    assert copied_from_library(load_submission(own), "erf_radius", REGISTRY["erf_radius"].forbid) == []


def test_the_submissions_process_has_its_own_library_and_leaves_nothing_behind(tmp_path: pathlib.Path) -> None:
    """A private copy of tutorial_lib (deleted on close), no server in ``__main__``, no ``__wrapped__``
    on the tripwires, and (Linux) a detached grandchild killed on close."""
    import os
    import sys
    import time

    from tutorial_lib.checks import _remote

    pid_file = tmp_path / "daemon.pid"
    code = ("import os, sys, time\nimport tutorial_lib.checks, tutorial_lib.erf as E\n"
            "FACTS = [tutorial_lib.checks.__file__, os.getcwd(), hasattr(sys.modules['__main__'], 'Server'),\n"
            "         hasattr(E.erf_radius, '__wrapped__')]\n"
            "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
            f"        open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n        time.sleep(600)\n"
            "    os._exit(0)\n"
            "def facts():\n    return FACTS\n")
    conn = _remote.Connection()
    conn.start()
    tmp = conn._tmp.name
    try:
        conn.deadline = time.monotonic() + 60
        run = conn.request(op="run", chunks=[{"label": "t", "source": code}], stop_on_error=True,
                           symbols=["facts"], forbid=["tutorial_lib.erf.erf_radius"])
        assert run["errors"] == []
        checks_file, cwd, has_server, wrapped = conn.request(op="call", symbol="facts", args=(), kwargs={}, forbid=[])
        for _ in range(100):
            if pid_file.exists() and pid_file.read_text():
                break
            time.sleep(0.05)
    finally:
        conn.close()
    assert checks_file.startswith(tmp) and not checks_file.startswith(_remote.package_dir())
    assert cwd.startswith(tmp) and not os.path.exists(tmp)
    assert (has_server, wrapped) == (False, False)
    if sys.platform.startswith("linux"):
        pid = int(pid_file.read_text())
        assert pid in conn.strays and not os.path.exists(f"/proc/{pid}")


@pytest.mark.parametrize("target, message", [
    ("checks", r"changed while tamper.py was graded: tutorial_lib/checks/__init__.py"),
    ("snapshot", r"changed while tamper.py was graded: the grader's library snapshot .*: metrics.py"),
])
def test_a_change_to_the_graders_own_library_is_a_grader_error(tmp_path: pathlib.Path, target: str, message: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The grader's checks (a copy here, never the real files) and the snapshot the children copy."""
    import shutil

    from tutorial_lib.checks import _remote

    copy = tmp_path / "grader" / "tutorial_lib"
    shutil.copytree(_remote.package_dir(), copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(_remote, "package_dir", lambda: str(copy))
    victim = copy / "checks" / "__init__.py" if target == "checks" else \
        pathlib.Path(_remote.library_snapshot()) / "metrics.py"
    original = victim.read_bytes()
    (tmp_path / "target.txt").write_text(str(victim))
    path = tmp_path / "tamper.py"
    path.write_text(f"with open(open({str(tmp_path / 'target.txt')!r}).read(), 'a') as fh:\n"
                    "    fh.write('\\n# every check passes now\\n')\n"
                    "def erf_radius(erf, fraction=0.9):\n    return 1.0\n")
    try:
        with pytest.raises(GraderError, match=message):
            grade_submission(path, only=["erf_radius"])
    finally:
        victim.write_bytes(original)
