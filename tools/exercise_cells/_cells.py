"""Helpers for the cell definitions of this folder (one module per chapter, ``NN_<chapter>.py``).

Each chapter module defines

* ``PREDICT``: the cells of its predict-then-measure exercise, in order — the exercise text
  (markdown, heading ``### Exercise {n} — …``: ``{n}`` is filled in on insertion), the student's
  prediction (``predict-stub``: values ``...``), the book's prediction (``predict-solution`` +
  ``hide-input``: removed from the student notebook), the measurement (``predict-measure``), the check
  call (``predict-check``) and the reasoning folded in a dropdown (``predict-reveal``);
* ``SCAFFOLDS``: ``{exercise number: [cells]}``, the code a discussion exercise starts from, on the
  library's components (``discussion-scaffold``), inserted right after that exercise's text.

``tools/exercise_cells/insert.py`` inserts them; ``tools/assignments.py`` turns them into student cells.
"""
from __future__ import annotations

from typing import Dict, List


def md(source: str, *tags: str) -> Dict:
    return {"cell_type": "markdown", "source": source.strip("\n"), "tags": list(tags)}


def code(source: str, *tags: str) -> Dict:
    return {"cell_type": "code", "source": source.strip("\n"), "tags": list(tags)}


def predict(title: str, text: str, stub: str, solution: str, measure: str, check: str, reveal: str) -> List[Dict]:
    """The five cells of a predict-then-measure exercise (see the module docstring)."""
    return [
        md(f"### Exercise {{n}} — predict, then measure: {title}\n\n{text.strip()}"),
        code(stub, "predict-stub"),
        code(solution, "predict-solution", "hide-input"),
        code(measure, "predict-measure"),
        code(check, "predict-check"),
        md(":::{dropdown} Why? — open it after you have predicted and measured\n" + reveal.strip() + "\n:::",
           "predict-reveal"),
    ]
