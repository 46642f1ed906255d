"""Helpers for the cell definitions of this folder (one module per chapter,
``NN_<chapter>.py``).

Each chapter module defines

* ``PREDICT``: the cells of its predict-then-measure exercise, in order — the
  exercise text (markdown, heading ``### Exercise {n} — …``: ``{n}`` is filled in
  on insertion), the student's prediction (``predict-stub``: values ``...``), the
  book's prediction (``predict-solution`` + ``hide-input``: removed from the
  student notebook), the measurement (``predict-measure``), the check call
  (``predict-check``) and the reasoning folded in a dropdown (``predict-reveal``);
* ``SCAFFOLDS``: ``{exercise number: [cells]}``, the code a discussion exercise
  starts from, on the library's components (``discussion-scaffold``), inserted right
  after that exercise's text.

Code cells fit the book's code column (84 characters a line;
``tests/test_assignments.py`` checks it, and that inserting the cells reproduces
the chapters' cells). ``tools/exercise_cells/insert.py`` inserts them;
``tools/assignments.py`` turns them into student cells.
"""

from __future__ import annotations

from typing import Dict, List

#: the longest code line a cell may have (the book's code column, CONTRIBUTING §4)
CODE_WIDTH = 84
#: the tag of a cell whose output nbval does not compare (a timing)
NOT_COMPARED = "nbval-ignore-output"


def md(source: str, *tags: str) -> Dict:
    return {
        "cell_type": "markdown",
        "source": source.strip("\n"),
        "tags": list(tags),
    }


def code(source: str, *tags: str) -> Dict:
    return {"cell_type": "code", "source": source.strip("\n"), "tags": list(tags)}


def predict(
    title: str,
    text: str,
    stub: str,
    solution: str,
    measure: str,
    check: str,
    reveal: str,
    timing: bool = False,
) -> List[Dict]:
    """The cells of a predict-then-measure exercise (see the module docstring);
    ``timing``: the measurement is a timing, so neither its output nor the check's
    (which prints the measured speeds) is compared by nbval."""
    compared = (NOT_COMPARED,) if timing else ()
    return [
        md(
            f"### Exercise {{n}} — predict, then measure: {title}\n\n{text.strip()}"
        ),
        code(stub, "predict-stub"),
        code(solution, "predict-solution", "hide-input"),
        code(measure, "predict-measure", *compared),
        code(check, "predict-check", *compared),
        md(
            ":::{dropdown} Why? — open it after you have predicted and measured\n"
            + reveal.strip()
            + "\n:::",
            "predict-reveal",
        ),
    ]
