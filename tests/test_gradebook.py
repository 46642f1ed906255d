"""One command grades a class: CSV gradebook, feedback per student, and grading that cannot be gamed.

The sample class (``tests/fixtures/submissions/course/``) is graded once, through the command line
an instructor runs, on the sample assignment ``course.toml`` (mean IoU 2 points, confusion matrix,
Pareto front and ERF radius 1 point each, a private seed, a 4 s time limit):

=====================  ================================================================  ======
submission             what it does                                                      total
=====================  ================================================================  ======
alice_correct          everything right (``pareto_front`` returns a NumPy array)          5
bob_partly_wrong       mean IoU averaged per image                                        partial
carol_crashing         ZeroDivisionError, ``os._exit`` in a check, a top-level raise      ~0
dave_looping (.ipynb)  an endless loop in ``erf_radius``                                  4
eve_gaming             replaces every check in ``REGISTRY`` by a no-op and patches         0
                       ``tutorial_lib``'s references to agree with its garbage answers
grace_wrapper          wraps ``tutorial_lib.erf.erf_radius``; reaches ``metrics.mean_iou``  2
                       through computed attribute names (caught at run time)
heidi_deleted_stub     ``erf_radius`` deleted, ``pareto_front`` renamed                   3
=====================  ================================================================  ======
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import pathlib
import shutil
import time
import subprocess
import sys

import pytest

from tutorial_lib.checks import REGISTRY, _core
from tutorial_lib.checks.assignment import GraderError, load_assignment, parse_assignment
from tutorial_lib.checks.forbidden import forbidden_uses
from tutorial_lib.checks.grade import load_submission

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "submissions"
COURSE = FIXTURES / "course"
ASSIGNMENT = FIXTURES / "course.toml"


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("gradebook")
    run = subprocess.run([sys.executable, "-m", "tutorial_lib.checks", "gradebook", str(COURSE),
                          "--assignment", str(ASSIGNMENT), "--out", str(out)],
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
    students = sorted(p.stem for p in COURSE.iterdir())
    assert sorted(graded["rows"]) == students == sorted(graded["feedback"]) == sorted(graded["results"])
    header = list(next(iter(graded["rows"].values())))
    assert header == ["student", "file", "mean_iou", "confusion_matrix", "pareto_front", "erf_radius",
                      "total", "max", "notes", "sha256"]
    assert graded["rows"]["alice_correct"]["sha256"] == hashlib.sha256((COURSE / "alice_correct.py").read_bytes()).hexdigest()
    assert {row["max"] for row in graded["rows"].values()} == {"5"}  # a fixed total, whatever was submitted
    assert "graded 7 submission(s)" in graded["stdout"]


def test_correct_submission_scores_full_marks(graded: dict) -> None:
    row = graded["rows"]["alice_correct"]
    assert (row["mean_iou"], row["confusion_matrix"], row["pareto_front"], row["erf_radius"]) == ("2", "1", "1", "1")
    assert row["total"] == "5" and row["notes"] == ""
    assert "**Total: 5 / 5**" in graded["feedback"]["alice_correct"]


def test_numpy_pareto_front_is_not_blamed_for_the_checkers_error(graded: dict) -> None:
    assert _tests(graded, "alice_correct")["pareto_front"]["detail"] == "pass"


def test_partly_wrong_gets_partial_credit_and_the_diagnosed_hint(graded: dict) -> None:
    row = graded["rows"]["bob_partly_wrong"]
    assert 0 < float(row["mean_iou"]) < 2 and row["total"] == f"{3 + float(row['mean_iou']):g}"
    text = graded["feedback"]["bob_partly_wrong"]
    assert "behaves like averaging per-image mean IoUs" in text
    assert "drop every pixel" not in text  # no hint about a mistake it did not make


def test_crashing_submission_scores_zero_and_the_grader_survives(graded: dict) -> None:
    tests = _tests(graded, "carol_crashing")
    assert tests["mean_iou"]["score"] == 0 and "ZeroDivisionError" in tests["mean_iou"]["output"]
    assert tests["confusion_matrix"]["detail"] == "crash" and "exit code 3" in tests["confusion_matrix"]["output"]
    assert tests["erf_radius"]["detail"] == "missing" and "RuntimeError" in tests["erf_radius"]["output"]
    assert "submission: error" in graded["rows"]["carol_crashing"]["notes"]


def test_endless_loop_times_out_for_its_exercise_only(graded: dict) -> None:
    row = graded["rows"]["dave_looping"]
    assert (row["erf_radius"], row["total"]) == ("0", "4") and "erf_radius: timeout" in row["notes"]
    assert "time limit of 4 s exceeded" in graded["feedback"]["dave_looping"]


def test_overwriting_checks_and_patching_references_scores_zero(graded: dict) -> None:
    source = (COURSE / "eve_gaming.py").read_text()
    assert "REGISTRY.values()" in source and "tutorial_lib.metrics.mean_iou = " in source
    row = graded["rows"]["eve_gaming"]
    assert row["total"] == "0", row
    assert all(t["detail"] in {"fail", "error"} for t in _tests(graded, "eve_gaming").values())


def test_wrapping_the_librarys_implementation_scores_zero_with_the_reason(graded: dict) -> None:
    row = graded["rows"]["grace_wrapper"]
    assert (row["mean_iou"], row["erf_radius"], row["total"]) == ("0", "0", "2")
    tests = _tests(graded, "grace_wrapper")
    assert tests["erf_radius"]["detail"] == "forbidden"
    assert "uses tutorial_lib.erf.erf_radius" in tests["erf_radius"]["output"]
    # mean_iou's use is invisible in the source (computed attribute names): the tripwire caught it at run time
    assert tests["mean_iou"]["detail"] == "forbidden"
    assert "tutorial_lib.metrics.confusion_matrix and tutorial_lib.metrics.mean_iou" in tests["mean_iou"]["output"]


def test_deleted_or_renamed_stub_scores_zero_and_keeps_the_total(graded: dict) -> None:
    row = graded["rows"]["heidi_deleted_stub"]
    assert (row["pareto_front"], row["erf_radius"], row["total"], row["max"]) == ("0", "0", "3", "5")
    assert "pareto_front is not defined" in graded["feedback"]["heidi_deleted_stub"]


# -- the red-team review's class: a detached daemon, a liar, a huge reply -------------------------
ATTACKS = FIXTURES / "attacks"


@pytest.fixture(scope="module")
def attacked(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("attacks")
    folder = root / "class"
    shutil.copytree(ATTACKS, folder)  # mallory's daemon overwrites zed.py: never the fixture itself
    original = {p.name: p.read_bytes() for p in folder.iterdir()}
    out = root / "attack_out"
    env = dict(os.environ, TUTORIAL_LIB_MAX_REPLY=str(8 << 20))
    run = subprocess.run([sys.executable, "-m", "tutorial_lib.checks", "gradebook", str(folder),
                          "--assignment", str(FIXTURES / "attacks.toml"), "--out", str(out)],
                         capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stderr
    csv_after_run = (out / "gradebook.csv").read_text(encoding="utf-8")
    time.sleep(1.0)  # a surviving daemon rewrites the gradebook every 0.1 s
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as fh:
        rows = {row["student"]: row for row in csv.DictReader(fh)}
    return {"rows": rows, "root": root, "out": out, "original": original, "csv": csv_after_run,
            "feedback": {p.stem: p.read_text(encoding="utf-8") for p in (out / "feedback").glob("*.md")},
            "results": {p.stem: json.loads(p.read_text()) for p in (out / "results").glob("*.json")}}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the subreaper needs Linux")
def test_attacks_a_detached_daemon_is_killed_and_cannot_touch_grades_or_classmates(attacked: dict) -> None:
    pid_file = attacked["root"] / "daemon.pid"
    assert pid_file.exists(), "the daemon did not start: the test proves nothing"
    pid = int(pid_file.read_text())
    assert not pathlib.Path(f"/proc/{pid}").exists(), "mallory's daemon outlived the grader"
    rows = attacked["rows"]
    assert (rows["mallory"]["total"], rows["mallory"]["notes"]) == ("0", "erf_radius: missing")
    assert (attacked["out"] / "gradebook.csv").read_text(encoding="utf-8") == attacked["csv"]
    assert "**Total: 0 / 3**" in attacked["feedback"]["mallory"]
    # zed.py was overwritten on disk, but what was graded is what zed submitted
    assert (attacked["root"] / "class" / "zed.py").read_bytes() != attacked["original"]["zed.py"]
    assert rows["zed"]["mean_iou"] == "2"
    assert rows["zed"]["sha256"] == hashlib.sha256(attacked["original"]["zed.py"]).hexdigest()
    assert attacked["results"]["zed"]["submission"]["sha256"] == rows["zed"]["sha256"]


def test_attacks_a_message_that_impersonates_a_pass_is_quoted_with_its_type(attacked: dict) -> None:
    text = attacked["feedback"]["liar"]
    assert 'your code raised SystemExit: "✓ mean IoU: all 7 checks passed"' in text
    assert "StudentError" not in text and attacked["rows"]["liar"]["mean_iou"] == "0"


def test_attacks_a_huge_reply_is_refused_without_reading_it(attacked: dict) -> None:
    test = {t["name"]: t for t in attacked["results"]["liar"]["tests"]}["erf_radius"]
    assert test["detail"] == "crash" and "reply too large" in test["output"] and "8 MiB" in test["output"]


def test_output_folder_that_is_a_symbolic_link_is_refused(tmp_path: pathlib.Path) -> None:
    from tutorial_lib.checks.gradebook import grade_folder

    (tmp_path / "real").mkdir()
    (tmp_path / "out").symlink_to(tmp_path / "real")
    with pytest.raises(GraderError, match="symbolic link"):
        grade_folder(COURSE, ASSIGNMENT, tmp_path / "out")


def test_outputs_are_written_atomically_and_replace_links(tmp_path: pathlib.Path) -> None:
    from tutorial_lib.checks.gradebook import _write

    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (tmp_path / "gradebook.csv").symlink_to(victim)  # planted by a submission
    _write(tmp_path / "gradebook.csv", "student\n")
    assert victim.read_text() == "keep" and not (tmp_path / "gradebook.csv").is_symlink()
    assert (tmp_path / "gradebook.csv").read_text() == "student\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# -- fast unit tests ----------------------------------------------------------------------------
def test_static_scan_follows_aliases_helpers_and_subclasses(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "s.py"
    path.write_text("import tutorial_lib as tl\nfrom tutorial_lib import erf as E\n"
                    "def helper(e, f):\n    return E.erf_radius(e, f)\n"
                    "def erf_radius(e, fraction=0.9):\n    return helper(e, fraction)\n"
                    "class ImagePooling(tl.layers.aspp.ImagePooling):\n    pass\n")
    sub = load_submission(path)
    assert forbidden_uses(sub, "erf_radius", REGISTRY["erf_radius"].forbid) == ["tutorial_lib.erf.erf_radius"]
    assert forbidden_uses(sub, "ImagePooling", REGISTRY["image_pooling"].forbid) == \
        ["tutorial_lib.layers.aspp.ImagePooling"]
    # a deleted stub in a chapter notebook that imports the library's function, or an assignment
    path.write_text("from tutorial_lib.erf import effective_receptive_field, erf_radius\n")
    assert forbidden_uses(load_submission(path), "erf_radius", REGISTRY["erf_radius"].forbid) == \
        ["tutorial_lib.erf.erf_radius"]
    path.write_text("import tutorial_lib.erf as E\nerf_radius = lambda e, f=0.9: E.erf_radius(e, f)\n")
    assert forbidden_uses(load_submission(path), "erf_radius", REGISTRY["erf_radius"].forbid) == \
        ["tutorial_lib.erf.erf_radius"]
    # a chapter's own cells may use the library freely: only the graded definition counts
    path.write_text("from tutorial_lib.erf import erf_radius as r\nprint(r)\n"
                    "def erf_radius(e, fraction=0.9):\n    return 0.0\n")
    assert forbidden_uses(load_submission(path), "erf_radius", REGISTRY["erf_radius"].forbid) == []


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
])
def test_bad_assignments_say_what_was_expected(data: dict, message: str) -> None:
    with pytest.raises(GraderError) as info:
        parse_assignment(data)
    assert message in str(info.value)


def test_assignment_round_trips_through_toml(tmp_path: pathlib.Path) -> None:
    assignment = load_assignment(ASSIGNMENT)
    path = tmp_path / "a.toml"
    path.write_text(assignment.to_toml())
    assert load_assignment(path) == assignment and assignment.max_score == 5
