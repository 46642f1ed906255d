"""One command grades a class: CSV gradebook, feedback per student, identities from a roster.

The sample class (``tests/fixtures/submissions/course/``) is graded once, through the command line
an instructor runs, in the sandbox, on the sample assignment ``course.toml`` (mean IoU 2 points,
confusion matrix, Pareto front and ERF radius 1 point each, a private seed, a 4 s time limit) with
the roster ``course_roster.csv``:

=====================  ================================================================  ======
submission             what it does                                                      total
=====================  ================================================================  ======
alice_correct          everything right (``pareto_front`` returns a NumPy array)          5
bob_partly_wrong       mean IoU averaged per image                                        partial
carol_crashing         ZeroDivisionError, ``os._exit`` in a check, a top-level raise      ~0
dave_looping (.ipynb)  an endless loop in ``erf_radius``                                  4
eve_gaming             replaces every check in ``REGISTRY`` and patches ``tutorial_lib``   0
grace_wrapper          wraps the library's ``erf_radius`` and ``mean_iou``                 2
heidi_deleted_stub     ``erf_radius`` deleted, ``pareto_front`` renamed                   3
=====================  ================================================================  ======

The gaming class of ``tests/test_grader_attacks.py`` tries everything else.
"""
from __future__ import annotations

import csv
import hashlib
import json
import pathlib
import subprocess
import sys

import pytest

from tutorial_lib.checks import _core
from tutorial_lib.grader.assignment import GraderError, load_assignment, parse_assignment

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "submissions"
COURSE = FIXTURES / "course"
ASSIGNMENT = FIXTURES / "course.toml"
ROSTER = FIXTURES / "course_roster.csv"


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("gradebook")
    run = subprocess.run([sys.executable, "-m", "tutorial_lib.grader", "gradebook", str(COURSE),
                          "--assignment", str(ASSIGNMENT), "--out", str(out), "--roster", str(ROSTER)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as fh:
        rows = {row["student"]: row for row in csv.DictReader(fh)}
    feedback = {p.stem: p.read_text(encoding="utf-8") for p in (out / "feedback").glob("*.md")}
    results = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in (out / "results").glob("*.json")}
    return {"rows": rows, "feedback": feedback, "results": results, "stdout": run.stdout}


def _tests(graded: dict, student: str) -> dict:
    return {t["name"]: t for t in graded["results"][student]["tests"]}


def test_gradebook_has_one_row_and_one_feedback_file_per_student(graded: dict) -> None:
    students = ["alice", "bob", "carol", "dave", "eve", "grace", "heidi"]
    assert sorted(graded["rows"]) == students == sorted(graded["feedback"]) == sorted(graded["results"])
    header = list(next(iter(graded["rows"].values())))
    assert header == ["student", "file", "mean_iou", "confusion_matrix", "pareto_front", "erf_radius",
                      "total", "max", "notes", "sha256"]
    assert graded["rows"]["alice"]["sha256"] == hashlib.sha256((COURSE / "alice_correct.py").read_bytes()).hexdigest()
    assert {row["max"] for row in graded["rows"].values()} == {"5"}  # a fixed total, whatever was submitted
    assert "graded 7 submission(s)" in graded["stdout"]
    assert all(r["sandbox"] for r in graded["results"].values())


def test_correct_submission_scores_full_marks(graded: dict) -> None:
    row = graded["rows"]["alice"]
    assert (row["mean_iou"], row["confusion_matrix"], row["pareto_front"], row["erf_radius"]) == ("2", "1", "1", "1")
    assert row["total"] == "5" and row["notes"] == ""
    assert "**Total: 5 / 5**" in graded["feedback"]["alice"]
    assert _tests(graded, "alice")["pareto_front"]["detail"] == "pass"  # a NumPy answer is fine


def test_partly_wrong_gets_partial_credit_and_the_diagnosed_hint(graded: dict) -> None:
    row = graded["rows"]["bob"]
    assert 0 < float(row["mean_iou"]) < 2 and row["total"] == f"{3 + float(row['mean_iou']):g}"
    text = graded["feedback"]["bob"]
    assert "behaves like averaging per-image mean IoUs" in text
    assert "drop every pixel" not in text  # no hint about a mistake it did not make


def test_crashing_submission_scores_zero_and_the_grader_survives(graded: dict) -> None:
    tests = _tests(graded, "carol")
    assert tests["mean_iou"]["score"] == 0 and "ZeroDivisionError" in tests["mean_iou"]["output"]
    assert tests["confusion_matrix"]["detail"] == "crash" and "exit code 3" in tests["confusion_matrix"]["output"]
    assert tests["erf_radius"]["detail"] == "missing" and "RuntimeError" in tests["erf_radius"]["output"]
    assert "submission: error" in graded["rows"]["carol"]["notes"]


def test_endless_loop_times_out_for_its_exercise_only(graded: dict) -> None:
    row = graded["rows"]["dave"]
    assert (row["erf_radius"], row["total"]) == ("0", "4") and "erf_radius: timeout" in row["notes"]
    assert "exceeded the time limit of 4 s" in graded["feedback"]["dave"]


def test_overwriting_checks_and_patching_the_library_scores_zero(graded: dict) -> None:
    source = (COURSE / "eve_gaming.py").read_text()
    assert "REGISTRY.values()" in source and "tutorial_lib.metrics.mean_iou = " in source
    assert graded["rows"]["eve"]["total"] == "0"
    assert "tutorial_lib.checks.REGISTRY is not in the grader's sandbox" in graded["feedback"]["eve"]


def test_the_librarys_implementation_is_not_in_the_sandbox(graded: dict) -> None:
    row = graded["rows"]["grace"]
    assert (row["mean_iou"], row["erf_radius"], row["total"]) == ("0", "0", "2")
    tests = _tests(graded, "grace")
    assert "tutorial_lib.erf.erf_radius is not in the student edition of tutorial_lib" in tests["erf_radius"]["output"]
    assert "not in the student edition" in tests["mean_iou"]["output"]


def test_deleted_or_renamed_stub_scores_zero_and_keeps_the_total(graded: dict) -> None:
    row = graded["rows"]["heidi"]
    assert (row["pareto_front"], row["erf_radius"], row["total"], row["max"]) == ("0", "0", "3", "5")
    assert "pareto_front is not defined" in graded["feedback"]["heidi"]


# -- fast unit tests ----------------------------------------------------------------------------
def test_output_folder_that_is_a_symbolic_link_is_refused(tmp_path: pathlib.Path) -> None:
    from tutorial_lib.grader.gradebook import Outputs

    (tmp_path / "real").mkdir()
    (tmp_path / "out").symlink_to(tmp_path / "real")
    with pytest.raises(GraderError, match="symbolic link"):
        Outputs(tmp_path / "out")


def test_outputs_replace_planted_links_and_are_group_readable(tmp_path: pathlib.Path) -> None:
    from tutorial_lib.grader.gradebook import Outputs

    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (tmp_path / "out" / "feedback").mkdir(parents=True)
    (tmp_path / "out" / "feedback" / "zed.md").symlink_to(victim)
    outputs = Outputs(tmp_path / "out")
    try:
        outputs.write("feedback", "zed.md", "# Feedback\n")
    finally:
        outputs.close()
    target = tmp_path / "out" / "feedback" / "zed.md"
    assert victim.read_text() == "keep" and not target.is_symlink() and target.read_text() == "# Feedback\n"
    assert target.stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("cell, shown", [("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"), ("+1", "'+1"), ("-1", "'-1"),
                                         ("@SUM(A1)", "'@SUM(A1)"), ("alice", "alice"), ("2.5", "2.5")])
def test_csv_cells_are_neutralised(cell: str, shown: str) -> None:
    from tutorial_lib.grader.gradebook import neutralise

    assert neutralise(cell) == shown


def test_a_fence_in_the_text_cannot_close_its_block() -> None:
    from tutorial_lib.grader.gradebook import fenced

    block = fenced("a ```` b")
    assert block.startswith("`````text\n") and block.endswith("\n`````")


def test_private_seed_changes_the_cases_and_only_in_the_grader() -> None:
    public = _core.generator(7).initial_seed()
    try:
        _core.set_private_seed(424242)
        private = _core.generator(7).initial_seed()
    finally:
        _core.set_private_seed(None)
    assert private != public == 7
    assert load_assignment(ASSIGNMENT).private_seed == 424242


@pytest.mark.parametrize("data, message", [
    ({}, "at least one"),
    ({"exercise": [{"check": "no_such"}]}, "expected a registered check, got 'no_such'"),
    ({"exercise": [{"check": "mean_iou", "points": 0}]}, "expected the points of mean_iou to be a positive number"),
    ({"exercise": [{"check": "mean_iou"}, {"check": "mean_iou"}]}, "each check once"),
    ({"exercise": [{"check": "mean_iou"}], "seed": 3}, "got also ['seed']"),
    ({"exercise": [{"check": "mean_iou"}], "private_seed": "x"}, "private_seed to be an integer"),
    ({"exercise": [{"check": "mean_iou"}], "memory_mb": 0}, "expected memory_mb to be a positive integer"),
])
def test_bad_assignments_say_what_was_expected(data: dict, message: str) -> None:
    with pytest.raises(GraderError) as info:
        parse_assignment(data)
    assert message in str(info.value)


def test_assignment_round_trips_through_toml(tmp_path: pathlib.Path) -> None:
    for source in (ASSIGNMENT, FIXTURES / "gaming.toml"):
        assignment = load_assignment(source)
        path = tmp_path / "a.toml"
        path.write_text(assignment.to_toml())
        assert load_assignment(path) == assignment
    assert load_assignment(ASSIGNMENT).max_score == 5 and load_assignment(FIXTURES / "gaming.toml").budget == 20


def test_the_instructor_pages_gradebook_is_this_one(graded: dict) -> None:
    import re

    page = (pathlib.Path(__file__).parent.parent / "book" / "appendix" / "assignments.md").read_text()
    (block,) = [b for b in re.findall(r"```text\n(.*?)```", page, re.S) if b.startswith("student,file,")]
    shown = list(csv.DictReader(block.splitlines()))
    assert shown == [{k: v for k, v in row.items() if k != "sha256"} for row in graded["rows"].values()]
