"""The grader's parts: reading submissions, the wire format, the student edition, the sandbox,
single-file grading, the command line, course checks, and Gradescope's autograder zip."""
from __future__ import annotations

import json
import os
import re
import pathlib
import shutil
import subprocess
import sys
import zipfile

import nbformat
import pytest
import torch

from tutorial_lib.checks import REGISTRY, register
from tutorial_lib.grader import wire
from tutorial_lib.grader.grade import format_table, grade_submission
from tutorial_lib.grader.submission import GraderError, load_submission, strip_magics

SUBMISSIONS = pathlib.Path(__file__).parent / "fixtures" / "submissions"
ROOT = pathlib.Path(__file__).parent.parent


def _by_name(report: dict) -> dict:
    return {t["name"]: t for t in report["tests"]}


# -- reading submissions (fast) ---------------------------------------------------------------
def test_strip_magics_keeps_indentation_and_line_numbers() -> None:
    out = strip_magics('if x:\n    %pip install foo\n!ls\nfiles = !ls\ny = 1 % 2\n')
    lines = out.splitlines()
    assert len(lines) == 5 and lines[1] == "    pass  # removed by the grader"
    assert lines[2].startswith("pass") and lines[3].startswith("pass") and lines[4] == "y = 1 % 2"
    compile(out, "<test>", "exec")


@pytest.mark.parametrize("magic, kept", [("%%time", True), ("%%capture out", True), ("%%bash", False)])
def test_cell_magics(magic: str, kept: bool) -> None:
    assert ("x = 1" in strip_magics(f"{magic}\nx = 1\n")) is kept


def test_notebook_loading_drops_check_cells_and_check_calls() -> None:
    sub = load_submission(SUBMISSIONS / "student_notebook.ipynb")
    code = "\n".join(c["source"] for c in sub.chunks)
    assert sub.kind == "ipynb" and "check_mean_iou" not in code and "check_confusion_matrix" not in code
    assert {"mean_iou", "confusion_matrix", "helper"} <= set(sub.symbols)
    assert [c["label"] for c in sub.chunks] == [f"code cell {n}" for n in (1, 2, 3, 5, 7, 8)]
    assert load_submission(SUBMISSIONS / "student_notebook.ipynb", exercises_only=True).symbols == \
        ["mean_iou", "confusion_matrix"]


def test_student_identity_from_a_student_line_or_the_notebooks_metadata(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "Chapter13.py"
    path.write_text('STUDENT = "s1234567"\ndef f():\n    return 1\n')
    assert load_submission(path).student == "s1234567"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")], metadata={"student": "ada"})
    nbformat.write(nb, tmp_path / "Chapter13.ipynb")
    assert load_submission(tmp_path / "Chapter13.ipynb").student == "ada"


def test_syntax_error_symbols_found_by_regex(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("def mean_iou(pred, target, num_classes, ignore_index=255):\n    return (\n")
    assert load_submission(path).symbols == ["mean_iou"]


@pytest.mark.parametrize("name, content, match", [
    ("answer.txt", b"x", "expected a .py or .ipynb"),
    ("answer.ipynb", b"{not json", "is not one"),
    ("answer.ipynb", b"[1, 2]", "list of cells"),
    ("answer.ipynb", b'{"cells": [{"cell_type": "code", "source": 42}]}', "got int"),
    ("answer.ipynb", b'{"cells": [{"cell_type": "code", "source": [1, "x"]}]}', "got list"),
    ("answer.py", b"\xff\xfe", "cannot read"),
])
def test_bad_files_are_grader_errors(tmp_path: pathlib.Path, name: str, content: bytes, match: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(GraderError, match=match):
        load_submission(path)


def test_register_validates() -> None:
    with pytest.raises(ValueError, match="non-empty sequence of identifiers"):
        register("x_bad", names="mean_iou", description="")
    with pytest.raises(ValueError, match="exists already"):
        register("mean_iou", names=["mean_iou"], description="")(lambda fn: None)


# -- the wire format: plain JSON, bounded --------------------------------------------------------
def _round_trip(value: object) -> object:
    r, w = os.pipe()
    try:
        wire.send(w, value)
        (size,) = wire.HEADER.unpack(os.read(r, wire.HEADER.size))
        return wire.decode(os.read(r, size))
    finally:
        os.close(r)
        os.close(w)


def test_wire_round_trips_what_checks_exchange() -> None:
    import numpy as np

    value = {"t": torch.arange(6, dtype=torch.float64).reshape(2, 3), "b": torch.tensor([True, False]),
             "h": torch.ones(2, dtype=torch.bfloat16), "n": np.array([3, 1]), "s": torch.Size([2, 3]),
             "tuple": (1, 2.5, "x", None), "dtype": torch.float32, "empty": torch.zeros(0, 4)}
    got = _round_trip(value)
    assert torch.equal(got["t"], value["t"]) and torch.equal(got["b"], value["b"]) and got["h"].dtype == torch.bfloat16
    assert isinstance(got["n"], np.ndarray) and got["n"].tolist() == [3, 1]
    assert got["s"] == torch.Size([2, 3]) and got["tuple"] == (1, 2.5, "x", None) and got["dtype"] is torch.float32
    assert got["empty"].shape == (0, 4)
    assert repr(_round_trip(object())) == '<"object" object>'


@pytest.mark.parametrize("frame, match", [
    (b"[" * 900 + b"]" * 900, "unreadable frame|levels of nesting"),  # 1.8 KB, the old decoder walked it for ever
    (b'{"evil": 1}', "known tag"),
    (b'{"tensor": ["float32", [4], "AAAA"]}', "expected 16 bytes"),
    (b'{"a": 1, "b": 2}', "tagged object"),
    (b"\xff", "unreadable frame"),
])
def test_wire_refuses_what_is_not_a_grader_message(frame: bytes, match: str) -> None:
    with pytest.raises(wire.WireError, match=match):
        wire.decode(frame)


# -- the student edition ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def edition(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    from tutorial_lib.grader.edition import build_edition

    forbid = sorted({f for c in REGISTRY.values() for f in c.forbid})
    return build_edition(forbid, tmp_path_factory.mktemp("edition"))


def test_the_student_edition_has_no_graded_component_and_says_so(edition: pathlib.Path) -> None:
    forbid = sorted({f for c in REGISTRY.values() for f in c.forbid})
    script = ("import importlib, json, sys\nout = {}\n"
              "for path in sys.argv[1:]:\n"
              "    module, _, name = path.rpartition('.')\n"
              "    obj = getattr(importlib.import_module(module), name)\n"
              "    try:\n        obj(1, 2)\n        out[path] = 'ran'\n"
              "    except NotImplementedError as err:\n        out[path] = str(err)\n"
              "    except Exception as err:\n        out[path] = repr(err)\n"
              "import tutorial_lib.checks as c\nout['check'] = c.check_mean_iou(None)\nprint(json.dumps(out))\n")
    run = subprocess.run([sys.executable, "-I", "-B", "-c", f"import sys; sys.path.insert(0, {str(edition)!r})\n" + script,
                          *forbid], capture_output=True, text=True, timeout=120, cwd=edition)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    for path in forbid:
        assert out[path] == f"{path} is not in the student edition of tutorial_lib (the grader's sandbox): " \
                            "it is what this exercise asks you to write", path
    assert out["check"] is None  # check_* calls do nothing in the sandbox
    assert not (edition / "tutorial_lib" / "grader").exists() and not list(edition.rglob("*.pyc"))
    assert sorted(p.name for p in (edition / "tutorial_lib" / "checks").iterdir()) == ["__init__.py"]


def test_the_student_edition_holds_none_of_the_graded_code(edition: pathlib.Path) -> None:
    import inspect

    from pkgutil import resolve_name as resolve
    from tutorial_lib.grader.similarity import similar_components

    forbid = sorted({f for c in REGISTRY.values() for f in c.forbid})
    text = "\n".join(p.read_text() for p in (edition / "tutorial_lib").rglob("*.py"))
    for path in forbid:
        body = inspect.getsource(resolve(path)).splitlines()[1:]
        assert "\n".join(body) not in text, path
    assert similar_components(inspect.getsource(resolve("tutorial_lib.erf")), ["tutorial_lib.erf.erf_radius"])


# -- the sandbox -------------------------------------------------------------------------------
def test_the_sandbox_sees_nothing_of_the_grader(edition: pathlib.Path, tmp_path: pathlib.Path) -> None:
    from tutorial_lib.grader.sandbox import DEFAULT_LIMITS, Sandbox

    secret = tmp_path / "secret.toml"
    secret.write_text("private_seed = 1\n")
    probe_code = ("import os, socket, json\n"
                  "def facts():\n"
                  "    out = {'uid': os.getuid(), 'root': sorted(os.listdir('/')), 'pids': sorted(\n"
                  "           int(p) for p in os.listdir('/proc') if p.isdigit()), 'env': sorted(os.environ)}\n"
                  f"    out['repo'] = sorted(os.listdir({str(ROOT)!r})) if os.path.isdir({str(ROOT)!r}) else []\n"
                  f"    out['secret'] = os.path.exists({str(secret)!r})\n"
                  "    try:\n        open('/opt/edition/tutorial_lib/erf.py', 'a'); out['write'] = True\n"
                  "    except OSError:\n        out['write'] = False\n"
                  "    try:\n        socket.create_connection(('1.1.1.1', 53), timeout=1); out['net'] = True\n"
                  "    except OSError:\n        out['net'] = False\n"
                  "    return json.dumps(out)\n")
    box = Sandbox(str(edition), dict(DEFAULT_LIMITS), budget=60)
    try:
        box.start()
        assert box.request(60, op="run", chunks=[{"label": "t", "source": probe_code}], stop_on_error=True,
                           symbols=["facts"])["errors"] == []
        facts = json.loads(box.request(60, op="call", symbol="facts", args=(), kwargs={}))
    finally:
        box.close()
    assert facts["uid"] == 65534 and max(facts["pids"]) < 10
    assert set(facts["repo"]) <= {".venv"}  # at most the virtual environment's own folder, bound read-only
    assert (facts["secret"], facts["write"], facts["net"]) == (False, False, False)
    from tutorial_lib.grader.sandbox import _python_roots

    # the interpreter's own folders are bound read-only where they live (a clone in /check puts "check" at the top)
    interpreter_tops = {pathlib.PurePosixPath(r).parts[1] for r in _python_roots()}
    assert set(facts["root"]) <= {"bin", "dev", "etc", "lib", "lib32", "lib64", "opt", "proc", "sbin", "tmp",
                                  "usr"} | interpreter_tops
    assert not any(k.startswith(("GITHUB", "AWS", "SSH")) for k in facts["env"])


def test_without_a_sandbox_the_grader_refuses_unless_told(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture) -> None:
    from tutorial_lib.grader import sandbox
    from tutorial_lib.grader.__main__ import main

    monkeypatch.setattr(sandbox, "bwrap_path", lambda: None)
    path = str(SUBMISSIONS / "correct.py")
    assert main(["grade", path, "--check", "mean_iou"]) == 2
    assert "no bwrap: install the grader's requirements" in capsys.readouterr().err
    assert main(["grade", path, "--check", "mean_iou", "--no-sandbox"]) == 0
    out = capsys.readouterr().out
    assert "graded WITHOUT a sandbox" in out and re.search(r"mean_iou +pass", out)


# -- grading single files in the sandbox --------------------------------------------------------
@pytest.mark.slow
def test_partly_wrong_submission_scores_half() -> None:
    report = grade_submission(SUBMISSIONS / "partly_wrong.py")
    tests = _by_name(report)
    assert tests["mean_iou"]["detail"] == "pass" and tests["confusion_matrix"]["detail"] == "fail"
    assert "rows and columns are swapped" in tests["confusion_matrix"]["output"]
    assert (report["score"], report["max_score"]) == (1.0, 2.0)
    table = format_table(report)
    assert "rows and columns" in table and table.splitlines()[-1].split()[-1] == "1/2"


@pytest.mark.slow
def test_class_submission_graded_with_its_hint() -> None:
    """A class (SegFormer's All-MLP decoder) is graded like a function; its mistake gets its hint."""
    report = grade_submission(SUBMISSIONS / "class_mistake.py")
    tests = _by_name(report)
    assert tests["all_mlp_decoder"]["symbol"] == "AllMLPDecoder" and tests["all_mlp_decoder"]["detail"] == "fail"
    assert "concatenation order" in tests["all_mlp_decoder"]["output"]
    assert "3 of 9 checks passed" in tests["all_mlp_decoder"]["output"]
    assert tests["mean_iou"]["detail"] == "pass" and (report["score"], report["max_score"]) == (1.33, 2.0)


@pytest.mark.slow
def test_crashing_and_looping_submissions() -> None:
    report = grade_submission(SUBMISSIONS / "crashing.py")
    tests = _by_name(report)
    assert report["submission"]["status"] == "error" and "line 13" in report["submission"]["errors"][0]["error"]
    assert tests["confusion_matrix"]["detail"] == "crash" and "exit code 3" in tests["confusion_matrix"]["output"]
    assert tests["mean_iou"]["detail"] == "missing" and report["score"] == 0.0
    report = grade_submission(SUBMISSIONS / "looping_top_level.py", timeout=2)
    (test,) = report["tests"]
    assert test["detail"] == "timeout" and "the submission itself exceeded the time limit of 2 s" in test["output"]


@pytest.mark.slow
def test_student_notebook_continues_after_an_error_cell() -> None:
    report = grade_submission(SUBMISSIONS / "student_notebook.ipynb")
    tests = _by_name(report)
    errors = report["submission"]["errors"]
    assert [e["label"] for e in errors] == ["code cell 7"] and "NameError" in errors[0]["error"]
    assert tests["mean_iou"]["detail"] == "pass" and tests["confusion_matrix"]["detail"] == "fail"
    assert "not implemented yet" in tests["confusion_matrix"]["output"] and report["score"] == 1.0


@pytest.mark.slow
def test_book_solutions_score_full(tmp_path: pathlib.Path) -> None:
    """Every chapter's solutions, as one notebook, pass every check in the sandbox's student edition."""
    from test_exercises import EXERCISES

    cells = [nbformat.v4.new_code_cell(e.solution, metadata={"tags": ["exercise-solution"]}) for e in EXERCISES]
    path = tmp_path / "all_solutions.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    names = sorted({e.check_name for e in EXERCISES})
    report = grade_submission(path, only=names)
    assert report["submission"]["errors"] == []
    assert all(t["detail"] == "pass" for t in report["tests"]), [t for t in report["tests"] if t["detail"] != "pass"]
    assert report["score"] == report["max_score"] == sum(REGISTRY[n].points for n in names)


def test_cli_exit_codes_and_json(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture) -> None:
    from tutorial_lib.grader.__main__ import main

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


# -- the instructor page's worked example works as printed ------------------------------------
@pytest.fixture
def course_checks(tmp_path: pathlib.Path):
    """The ``course_checks.py`` block of book/appendix/assignments.md, written to a file."""
    import re

    from tutorial_lib.grader import grade

    page = (ROOT / "book" / "appendix" / "assignments.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", page, re.S) if b.startswith("# course_checks.py")]
    path = tmp_path / "course_checks.py"
    path.write_text(block)
    before = set(REGISTRY)
    yield path
    for name in set(REGISTRY) - before:
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
    # the wrong answer passes only the case without ignored pixels: one pass earns nothing
    assert scores == {"good": ("pixel_accuracy", 2.0, 2.0), "wrong": ("pixel_accuracy", 0.0, 2.0)}


def test_broken_checks_file_is_a_grader_error(tmp_path: pathlib.Path) -> None:
    from tutorial_lib.grader.grade import load_checks

    broken = tmp_path / "broken_checks.py"
    broken.write_text("raise ImportError('nope')\n")
    with pytest.raises(GraderError, match="failed to import: ImportError: nope"):
        load_checks(broken)
    with pytest.raises(GraderError, match="existing .py file"):
        load_checks(tmp_path / "absent.py")


def test_a_graded_component_the_library_no_longer_defines_stops_the_grader(
        tmp_path: pathlib.Path, capsys: pytest.CaptureFixture) -> None:
    """A changed library file (a graded function renamed or moved) stops the grader with an
    error naming it (exit code 2), before any submission runs."""
    from tutorial_lib.grader import grade
    from tutorial_lib.grader.__main__ import main

    checks = tmp_path / "renamed_checks.py"
    checks.write_text("from tutorial_lib.checks import register\n"
                      "@register('renamed', names=['renamed'], description='d',\n"
                      "          forbid=['tutorial_lib.erf.erf_radius_renamed'])\n"
                      "def check_renamed(fn):\n    fn()\n")
    try:
        code = main(["grade", str(SUBMISSIONS / "correct.py"), "--check", "renamed", "--checks", str(checks)])
    finally:
        REGISTRY.pop("renamed", None)
        grade._LOADED.pop(str(checks.resolve()), None)
    assert code == 2
    assert "tutorial_lib.erf.erf_radius_renamed to be defined in erf.py" in capsys.readouterr().err


# -- Gradescope: the autograder zip, run in a simulated /autograder -------------------------------
GAMING = '''import tutorial_lib.checks
from tutorial_lib import metrics
tutorial_lib.checks.REGISTRY = {}
def mean_iou(pred, target, num_classes, ignore_index=255):
    return metrics.mean_iou(metrics.confusion_matrix(pred, target, num_classes, ignore_index))
def erf_radius(erf, fraction=0.9):
    import os
    for root in ("/autograder/results", "/autograder/source"):
        try:
            open(os.path.join(root, "results.json"), "w").write('{"score": 100}')
        except OSError:
            pass
    return -1.0
'''


def test_a_gradescope_run_that_cannot_grade_scores_zero_and_says_why(tmp_path: pathlib.Path) -> None:
    from tutorial_lib.grader.autograder import run

    (tmp_path / "source").mkdir()
    shutil.copy(SUBMISSIONS / "gaming.toml", tmp_path / "source" / "assignment.toml")
    (tmp_path / "submission").mkdir()
    results = run(tmp_path)
    assert results == json.loads((tmp_path / "results" / "results.json").read_text())
    assert results["score"] == 0 and [t["score"] for t in results["tests"]] == [0, 0]
    assert "could not be graded" in results["output"] and "found none" in results["output"]


@pytest.mark.slow
def test_run_autograder_in_a_simulated_gradescope_container(tmp_path: pathlib.Path) -> None:
    from tutorial_lib.grader.autograder import write_autograder
    from tutorial_lib.grader.sandbox import bwrap_path

    zip_path = write_autograder(SUBMISSIONS / "gaming.toml", tmp_path / "autograder.zip")
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
        assert {"setup.sh", "run_autograder", "assignment.toml", "requirements.txt",
                "tutorial_lib/erf.py", "tutorial_lib/grader/grade.py"} <= set(names)
        assert not [n for n in names if "__pycache__" in n]
    correct = "\n".join((SUBMISSIONS / "gaming" / "zed.py").read_text().splitlines()[2:])
    results = {}
    for name, source in (("correct", correct), ("wrong", correct.replace("present = union > 0", "present = union >= 0")),
                         ("gaming", GAMING)):
        ag = tmp_path / name / "autograder"
        ag.mkdir(parents=True)
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(ag / "source")
        shutil.copy(ag / "source" / "run_autograder", ag / "run_autograder")  # as Gradescope does
        (ag / "submission").mkdir()
        (ag / "submission" / "chapter13.py").write_text(source)
        venv = pathlib.Path(sys.prefix)
        cmd = [bwrap_path(), "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
        for top in ("/bin", "/sbin", "/lib", "/lib64"):
            if os.path.islink(top):
                cmd += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                cmd += ["--ro-bind", top, top]
        for path in {os.path.realpath(sys.base_prefix), str(venv)}:
            cmd += ["--ro-bind", path, path]
        cmd += ["--bind", str(ag), "/autograder", "--bind", "/proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
                "--setenv", "PATH", f"{venv}/bin:/usr/bin:/bin", "--chdir", "/autograder", "--",
                "bash", "/autograder/run_autograder"]
        if os.geteuid() != 0:
            cmd[1:1] = ["--unshare-user", "--uid", "0"]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
        results[name] = json.loads((ag / "results" / "results.json").read_text())
    assert results["correct"]["score"] == 3 and all(t["status"] == "passed" for t in results["correct"]["tests"])
    assert 0 < results["wrong"]["score"] < 3
    assert results["gaming"]["score"] == 0
    assert "not in the student edition" in json.dumps(results["gaming"])
    assert {t["name"] for t in results["gaming"]["tests"]} == {"mean_iou", "erf_radius"}
