"""A class that tries to game the grader, graded once in the sandbox (``tests/fixtures/submissions/gaming``).

Each file tries one way around the grader (its docstring says which and what it should score);
``zed.py`` is honest and correct. The class runs through the instructor's command line, once,
into a fresh folder; then every attack is held to 0 or to its honest score, zed keeps 3/3, no
process of any submission is left on the machine and the grader's library is unchanged.

=======================  ==========================================================  =========
file                     attack                                                      total
=======================  ==========================================================  =========
a01_subclass             library called from a tensor subclass's hooks               0
a02_fork                 library called inside ``os.fork()``, else a constant         0
a03_closure              gc, closures and frames searched; grader objects "disarmed"  0
a04_snapshot             the package copied under a new name; the disk searched      0
a05_pasted (generated)   the library's code pasted with renamed variables            3, flagged
a06_seed                 the seed looked for in ``/proc`` and ``*.toml`` files        0, no leak
a07_pipe                 forged replies written to the grader's pipe                 0
a08_bomb                 shared-reference reply, a raw frame of nested JSON          0
a09/a10 (.ipynb)         a truncated notebook, a cell whose source is a number       0 (a row)
a11_survivor             a chain of 20 detached processes                            3, none left
a12_libedit              appends to the library's files                              3, no change
=1+2                     formula file name and STUDENT, markdown type names/messages  0, quoted
a14_memory               8 GiB in one call                                           1
a15_endless (.ipynb)     an endless last cell                                        0
a16_slow                 slow top level, looping functions: the budget               0, ≤ 20 s
a17_forkbomb             2000 forks at import                                        3, none left
a19_source               the library's source executed, a reloaded module unwrapped  0
zed, zed_again           the same STUDENT twice, both correct                        3, noted
=======================  ==========================================================  =========
"""
from __future__ import annotations

import csv
import hashlib
import inspect
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

from tutorial_lib.grader.sandbox import SandboxError, probe

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "submissions"
MARKER = f"TUTORIAL_LIB_SURVIVOR_MARKER_{os.getpid()}"  # this run's: another run's processes are not ours
LIBRARY = pathlib.Path(__file__).parent.parent / "tutorial_lib"


def _library_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted(LIBRARY.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _survivors() -> list:
    found = []
    for pid in os.listdir("/proc"):
        try:
            if MARKER.encode() in pathlib.Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            continue
    return found


def _pasted() -> str:
    """The library's mean IoU and ERF radius, docstrings removed and variables renamed."""
    from tutorial_lib import erf, metrics

    parts = [inspect.getsource(f) for f in (metrics.confusion_matrix, metrics.iou_per_class, metrics.mean_iou,
                                            erf._check_map, erf.erf_mass_curve, erf.erf_radius)]
    source = re.sub(r'"""[\s\S]*?"""', "", "\n\n".join(parts))
    source = re.sub(r"\bradii\b", "distances", re.sub(r"\bindex\b", "k", source))
    source = source.replace("check_positive", "abs").replace("def mean_iou(", "def _mean_iou_of(")
    return ('"""The library\'s code pasted with trivial edits: correct, so its score stands, flagged."""\n'
            "import torch\nfrom typing import Optional, Tuple\n" + source + "\n\n"
            "def mean_iou(pred, target, num_classes, ignore_index=255):\n"
            "    return _mean_iou_of(confusion_matrix(pred, target, num_classes, ignore_index))\n")


@pytest.fixture(scope="module")
def gamed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    try:
        probe(str(LIBRARY.parent))
    except SandboxError as err:
        pytest.fail(f"no working sandbox on this machine: {err}")
    root = tmp_path_factory.mktemp("gaming")
    folder = root / "class"
    shutil.copytree(FIXTURES / "gaming", folder)
    for path in folder.glob("*.py"):
        path.write_text(path.read_text(encoding="utf-8").replace("TUTORIAL_LIB_SURVIVOR_MARKER", MARKER), encoding="utf-8")
    (folder / "a05_pasted.py").write_text(_pasted(), encoding="utf-8")
    os.symlink(FIXTURES / "gaming" / "zed.py", folder / "a18_link.py")
    before = _library_hash()
    out = root / "out"
    env = dict(os.environ, TUTORIAL_LIB_MAX_REPLY=str(256 << 10))
    run = subprocess.run([sys.executable, "-m", "tutorial_lib.grader", "gradebook", str(folder),
                          "--assignment", str(FIXTURES / "gaming.toml"), "--out", str(out)],
                         capture_output=True, text=True, timeout=900, env=env)
    assert run.returncode == 0, run.stderr
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as fh:
        rows = {row["file"].lstrip("'"): row for row in csv.DictReader(fh)}
    return {"rows": rows, "out": out, "survivors": _survivors(), "library": (before, _library_hash()),
            "feedback": {p.name: p.read_text(encoding="utf-8") for p in (out / "feedback").iterdir()},
            "results": {p.stem: json.loads(p.read_text()) for p in (out / "results").iterdir()}}


def _total(gamed: dict, file: str) -> str:
    return gamed["rows"][file]["total"]


def test_the_honest_student_keeps_full_marks_and_the_duplicate_is_reported(gamed: dict) -> None:
    for file, other in (("zed.py", "zed_again.py"), ("zed_again.py", "zed.py")):
        row = gamed["rows"][file]
        assert (row["student"], row["total"], row["max"]) == ("zed", "3", "3")
        assert f"duplicate: zed also submitted {other}" in row["notes"]
    assert "**Total: 3 / 3**" in gamed["feedback"]["zed--zed.md"]


@pytest.mark.parametrize("file", ["a01_subclass.py", "a03_closure.py", "a04_snapshot.py", "a07_pipe.py",
                                  "a08_bomb.py", "a15_endless.ipynb", "a16_slow.py", "a19_source.py"])
def test_library_use_and_protocol_attacks_score_zero(gamed: dict, file: str) -> None:
    assert _total(gamed, file) == "0", gamed["rows"][file]


def test_the_library_in_a_fork_scores_what_a_constant_scores_nothing(gamed: dict) -> None:
    row = gamed["rows"]["a02_fork.py"]
    assert (row["mean_iou"], row["erf_radius"]) == ("0", "0")  # 0.0 passes the one-pixel case only


def test_pasted_library_code_keeps_its_score_and_is_flagged_with_its_similarity(gamed: dict) -> None:
    row = gamed["rows"]["a05_pasted.py"]
    assert row["total"] == "3"
    shares = [int(s) for s in re.findall(r"similar to tutorial_lib\.\w+\.\w+: (\d+)%", row["notes"])]
    assert shares and min(shares) >= 50, row["notes"]
    assert "similar" not in gamed["rows"]["zed.py"]["notes"]


def test_the_seed_is_nowhere_to_be_found(gamed: dict) -> None:
    assert _total(gamed, "a06_seed.py") == "0"
    text = gamed["feedback"]["a06_seed.md"] + json.dumps(gamed["results"]["a06_seed"])
    assert "31337" not in text and "found [" not in text


def test_bombs_are_held_by_the_time_limit_and_the_reply_limit(gamed: dict) -> None:
    tests = {t["name"]: t for t in gamed["results"]["a08_bomb"]["tests"]}
    assert tests["mean_iou"]["detail"] == "timeout"
    assert tests["erf_radius"]["detail"] == "crash" and "reply too large" in tests["erf_radius"]["output"]


@pytest.mark.parametrize("file, why", [("a09_truncated.ipynb", "is not one (JSONDecodeError)"),
                                       ("a10_number_source.ipynb", "to have text as its source, got int"),
                                       ("a18_link.py", "a symbolic link")])
def test_unreadable_files_become_rows_with_a_note(gamed: dict, file: str, why: str) -> None:
    row = gamed["rows"][file]
    assert row["total"] == "0" and "submission: unreadable" in row["notes"] and why in row["notes"]


def test_no_process_outlives_its_sandbox(gamed: dict) -> None:
    assert gamed["survivors"] == []
    assert _total(gamed, "a11_survivor.py") == "3" and _total(gamed, "a17_forkbomb.py") == "3"


def test_the_library_cannot_be_edited(gamed: dict) -> None:
    before, after = gamed["library"]
    assert before == after and _total(gamed, "a12_libedit.py") == "3"


def test_injection_is_neutralised_in_the_csv_and_quoted_in_the_feedback(gamed: dict) -> None:
    raw = (gamed["out"] / "gradebook.csv").read_text(encoding="utf-8")
    assert not re.search(r'(^|,)"?[=+@-]', raw, re.M), "a CSV cell begins with a formula character"
    row = gamed["rows"]["=1+2.py"]
    assert (row["student"], row["total"]) == ("_1+2", "0") and "is not a valid id" in row["notes"]
    text = gamed["feedback"]["_1+2.md"]
    outside = re.sub(r"^(`{3,})text\n[\s\S]*?\n\1$", "", text, flags=re.M)  # the quoted blocks removed
    assert "```" in text and "Total: 3 / 3" not in outside and outside.count("**Total:") == 1
    assert "**Total: 0 / 3**" in outside
    assert "# Feedback for zed" not in outside


def test_limits_memory_and_budget(gamed: dict) -> None:
    row = gamed["rows"]["a14_memory.py"]
    assert (row["mean_iou"], row["erf_radius"]) == ("0", "1")
    assert "MemoryError" in gamed["feedback"]["a14_memory.md"]
    slow = gamed["results"]["a16_slow"]["submission"]
    assert slow["seconds"] < 20 + 60  # one budget (plus start-ups), not run_timeout + 2 × timeout each
    assert "time budget of 20 s" in json.dumps(gamed["results"]["a16_slow"])


def test_outputs_are_group_readable(gamed: dict) -> None:
    out = gamed["out"]
    assert oct(out.stat().st_mode & 0o777) == "0o750"
    assert oct((out / "gradebook.csv").stat().st_mode & 0o777) == "0o640"
    assert all((p.stat().st_mode & 0o777) == 0o640 for p in (out / "feedback").iterdir())


def test_sigterm_stops_the_grader_with_nothing_left_behind(tmp_path: pathlib.Path) -> None:
    import signal
    import time

    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "slow.py").write_text("import subprocess, sys, time\n"
                                    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)', "
                                    f"{MARKER!r}])\ntime.sleep(600)\n")
    tmp = tmp_path / "tmp"  # the grader's temporary folders (its student edition) go here
    tmp.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "tutorial_lib.grader", "gradebook", str(folder), "--assignment",
                             str(FIXTURES / "gaming.toml"), "--out", str(tmp_path / "out")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, TMPDIR=str(tmp)))
    try:
        for _ in range(3000):  # start-up (torch) takes long on a busy machine
            if _survivors():
                break
            time.sleep(0.1)
        assert _survivors(), "the submission did not start: the test proves nothing"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        proc.kill()
    time.sleep(0.5)
    assert _survivors() == []
    assert list(tmp.iterdir()) == []
