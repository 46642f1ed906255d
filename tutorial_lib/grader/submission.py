"""Read a submission (a ``.py`` script or an ``.ipynb`` notebook) into code chunks, without running it.

A notebook contributes its code cells, without the ``exercise-check`` cells; IPython magics and
shell lines become ``pass``; top-level ``check_*(...)`` calls are removed (a student's own failing
check cannot stop the run). Anything unexpected in the file (not UTF-8, not JSON, a cell whose
``source`` is a number) is a ``GraderError`` naming what was expected: the gradebook turns it into
that student's row, never into a stopped class.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import pathlib
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from .assignment import GraderError

__all__ = ["Submission", "load_submission", "strip_magics", "student_id"]

#: cell magics whose body is ordinary Python (kept, only the magic line is dropped)
PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun"}
_LINE_MAGIC = re.compile(r"^(\s*)(?:[%!]|[\w.\[\], ]+=\s*[%!])")
_DEF = re.compile(r"^(?:async\s+def|def|class)\s+([A-Za-z_]\w*)", re.M)
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")


@dataclass
class Submission:
    """A submission's code as chunks (notebook cells or one script) and its top-level symbols."""

    path: pathlib.Path
    kind: str  # "py" or "ipynb"
    chunks: List[Dict[str, str]]
    symbols: List[str] = field(default_factory=list)
    sha256: str = ""  # of the file's bytes as read (once, before anything ran)
    student: Optional[str] = (
        None  # from a STUDENT = "..." line or the notebook's metadata
    )


def strip_magics(source: str) -> str:
    """Turn IPython magics and shell lines into ``pass`` (same indentation, same line numbers)."""
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        if lines[0].split()[0][2:] not in PYTHON_CELL_MAGICS:
            return ""
        lines[0] = ""
    out = []
    for line in lines:
        match = _LINE_MAGIC.match(line)
        out.append(
            f"{match.group(1)}pass  # removed by the grader" if match else line
        )
    return "\n".join(out) + ("\n" if out else "")


def _is_check_call(node: ast.stmt) -> bool:
    if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)):
        return False
    func = node.value.func
    name = (
        func.id
        if isinstance(func, ast.Name)
        else func.attr
        if isinstance(func, ast.Attribute)
        else ""
    )
    return name.startswith("check_")


def _prepare(source: str) -> tuple:
    """Source without top-level ``check_*(...)`` calls, its top-level symbols and its ``STUDENT``."""
    try:
        tree = ast.parse(source)
    # graded anyway: the child reports the error, symbols from a regex
    except (
        SyntaxError,
        ValueError,
    ):
        return source, _DEF.findall(source), None
    lines = source.splitlines()
    symbols: List[str] = []
    student = None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            symbols.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = (
                node.targets if isinstance(node, ast.Assign) else [node.target]
            )
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            symbols += names
            if (
                "STUDENT" in names
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                student = node.value.value.strip()
        elif _is_check_call(node) and node.col_offset == 0:
            first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
            lines[first : last + 1] = [
                "pass  # check call removed by the grader"
            ] + [""] * (last - first)
    return "\n".join(lines) + "\n", symbols, student


def student_id(text: Any) -> Optional[str]:
    """A student id as written (letters, digits, ``._@+-``, at most 64), else ``None``."""
    return text if isinstance(text, str) and _ID.match(text) else None


def _cells(text: str, path: pathlib.Path) -> tuple:
    try:
        nb = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as err:
        raise GraderError(
            f"expected a Jupyter notebook (JSON), {path.name} is not one ({type(err).__name__})"
        ) from None
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        raise GraderError(
            f"expected a notebook with a list of cells, {path.name} has none"
        )
    meta = nb.get("metadata") if isinstance(nb.get("metadata"), dict) else {}
    return cells, meta.get("student")


def load_submission(
    path: "str | os.PathLike[str]",
    exercises_only: bool = False,
    content: Optional[bytes] = None,
) -> Submission:
    """Read a ``.py`` or ``.ipynb`` submission; ``GraderError`` if it cannot be read.

    ``content``: the file's bytes, read earlier (default: read the file now). With
    ``exercises_only`` a notebook contributes only its ``exercise-stub`` and ``exercise-solution`` cells.
    """
    path = pathlib.Path(path)
    if path.suffix not in {".py", ".ipynb"}:
        raise GraderError(f"expected a .py or .ipynb submission, got {path.name!r}")
    try:
        data = path.read_bytes() if content is None else bytes(content)
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise GraderError(
            f"cannot read {path.name}: {type(err).__name__}: {err}"
        ) from None
    raw: List[Dict[str, str]] = []
    student = None
    if path.suffix == ".py":
        raw.append({"label": path.name, "source": text})
    else:
        cells, student = _cells(text, path)
        number = 0
        for cell in cells:
            if not isinstance(cell, dict) or cell.get("cell_type") != "code":
                continue
            number += 1
            meta = (
                cell.get("metadata")
                if isinstance(cell.get("metadata"), dict)
                else {}
            )
            tags = meta.get("tags") if isinstance(meta.get("tags"), list) else []
            tags = {t for t in tags if isinstance(t, str)}
            if "exercise-check" in tags or (
                exercises_only and not tags & {"exercise-stub", "exercise-solution"}
            ):
                continue
            source = cell.get("source", "")
            if isinstance(source, list) and all(isinstance(s, str) for s in source):
                source = "".join(source)
            if not isinstance(source, str):
                raise GraderError(
                    f"expected code cell {number} of {path.name} to have text as its source, "
                    f"got {type(source).__name__}"
                )
            raw.append(
                {"label": f"code cell {number}", "source": strip_magics(source)}
            )
    chunks, symbols = [], []
    for chunk in raw:
        source, found, named = _prepare(chunk["source"])
        student = student or named
        chunks.append({"label": chunk["label"], "source": source})
        symbols += [s for s in found if s not in symbols]
    return Submission(
        path,
        path.suffix[1:],
        chunks,
        symbols,
        hashlib.sha256(data).hexdigest(),
        student if isinstance(student, str) else None,
    )
