"""Insert a chapter's predict-then-measure exercise and discussion scaffolds into
its notebook, or check or refresh the cells inserted before.

    python tools/exercise_cells/insert.py NOTEBOOK [--dry-run | --check | --refresh]

The cells come from ``tools/exercise_cells/<chapter stem>.py`` (see ``_cells.py``).
The predict-then-measure exercise is appended after the chapter's last exercise,
numbered next; each scaffold goes right after the text of its discussion exercise (a
markdown cell holding several exercise headings is split first, one cell per
exercise). Idempotent: cells carry ``metadata.exercise_cells``, and a notebook that
has them already is left unchanged. Re-execute the chapter afterwards.

``--check`` exits 1 when the notebook's inserted cells differ from what the
definitions insert now (source, tags, order); ``--refresh`` replaces them by the
definitions' cells, keeping the outputs of a code cell whose code is unchanged but
for comments and layout (the same syntax tree), and clearing the others (re-execute
the chapter afterwards).
"""

from __future__ import annotations

import argparse
import ast
import copy
import importlib.util
import pathlib
import re
import sys
from typing import Dict, List

import nbformat

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def definitions(chapter: str):
    """The module of ``tools/exercise_cells/<chapter>.py``."""
    path = HERE / f"{chapter}.py"
    if not path.exists():
        raise ValueError(f"exercise_cells: expected {path}, found none")
    spec = importlib.util.spec_from_file_location(f"exercise_cells_{chapter}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _cell(
    spec: Dict, chapter: str, role: str, number: int = 0
) -> nbformat.NotebookNode:
    source = (
        spec["source"].replace("{n}", str(number)) if number else spec["source"]
    )
    cell = (
        nbformat.v4.new_markdown_cell(source)
        if spec["cell_type"] == "markdown"
        else nbformat.v4.new_code_cell(source)
    )
    if spec["tags"]:
        cell.metadata["tags"] = list(spec["tags"])
    cell.metadata["exercise_cells"] = f"{chapter}:{role}"
    return cell


def _split(cells: List[nbformat.NotebookNode]) -> List[nbformat.NotebookNode]:
    out = []
    for cell in cells:
        starts = (
            [
                m.start()
                for m in re.finditer(r"^### Exercise \d+", cell.source, re.M)
            ]
            if cell.cell_type == "markdown"
            else []
        )
        if len(starts) > 1 or (starts and starts[0] > 0):
            bounds = ([0] if starts[0] > 0 else []) + starts + [len(cell.source)]
            for a, b in zip(bounds, bounds[1:]):
                if cell.source[a:b].strip():
                    new = nbformat.v4.new_markdown_cell(
                        cell.source[a:b].strip("\n")
                    )
                    new.metadata = dict(cell.metadata)
                    out.append(new)
        else:
            out.append(cell)
    return out


def insert(nb: nbformat.NotebookNode, chapter: str) -> bool:
    """Insert the chapter's cells into ``nb`` (in place); False if they are there
    already."""
    if any(
        str(c.metadata.get("exercise_cells", "")).startswith(f"{chapter}:")
        for c in nb.cells
    ):
        return False
    module = definitions(chapter)
    cells = _split(nb.cells)
    numbers = [
        int(m.group(1))
        for c in cells
        if c.cell_type == "markdown"
        for m in re.finditer(r"^### Exercise (\d+)", c.source, re.M)
    ]
    number = max(numbers, default=0) + 1
    for exercise, specs in sorted(
        getattr(module, "SCAFFOLDS", {}).items(), reverse=True
    ):
        at = next(
            (
                i
                for i, c in enumerate(cells)
                if c.cell_type == "markdown"
                and re.search(rf"^### Exercise {exercise}\b", c.source, re.M)
            ),
            None,
        )
        if at is None:
            raise ValueError(
                f"exercise_cells: {chapter} has no Exercise {exercise} for its "
                "scaffold"
            )
        cells[at + 1 : at + 1] = [
            _cell(s, chapter, f"scaffold-{exercise}") for s in specs
        ]
    cells += [_cell(s, chapter, "predict", number) for s in module.PREDICT]
    nb.cells = cells
    return True


def _is_inserted(cell: nbformat.NotebookNode, chapter: str) -> bool:
    return str(cell.metadata.get("exercise_cells", "")).startswith(f"{chapter}:")


def _inserted(nb: nbformat.NotebookNode, chapter: str) -> list:
    return [c for c in nb.cells if _is_inserted(c, chapter)]


def _fresh(nb: nbformat.NotebookNode, chapter: str) -> nbformat.NotebookNode:
    """``nb`` with its inserted cells taken out and inserted again from the
    definitions."""
    fresh = copy.deepcopy(nb)
    fresh.cells = [c for c in fresh.cells if not _is_inserted(c, chapter)]
    insert(fresh, chapter)
    return fresh


def _key(cell: nbformat.NotebookNode) -> tuple:
    return (
        cell.metadata.get("exercise_cells"),
        cell.cell_type,
        cell.source,
        list(cell.metadata.get("tags", [])),
    )


def differences(nb: nbformat.NotebookNode, chapter: str) -> List[str]:
    """Where the notebook's inserted cells differ from the definitions' (source,
    tags, role, order); empty when a fresh insertion reproduces them."""
    have, want = _inserted(nb, chapter), _inserted(_fresh(nb, chapter), chapter)
    found = []
    if len(have) != len(want):
        found.append(
            f"{len(have)} inserted cells, the definitions give {len(want)}"
        )
    for i, (a, b) in enumerate(zip(have, want)):
        if _key(a) != _key(b):
            role = b.metadata["exercise_cells"]
            found.append(f"inserted cell {i} ({role}) differs from the definitions")
    return found


def _same_code(a: str, b: str) -> bool:
    try:
        return ast.dump(ast.parse(a)) == ast.dump(ast.parse(b))
    except SyntaxError:
        return a == b


def refresh(nb: nbformat.NotebookNode, chapter: str) -> bool:
    """Replace the inserted cells, in place, by the definitions' (the other cells
    stay as they are); keep the outputs of a code cell whose syntax tree is
    unchanged. False if nothing changed."""
    if not differences(nb, chapter):
        return False
    have = _inserted(nb, chapter)
    want = _inserted(_fresh(nb, chapter), chapter)
    roles = [c.metadata["exercise_cells"] for c in have]
    if roles != [c.metadata["exercise_cells"] for c in want]:
        raise ValueError(
            f"exercise_cells: the cells of {chapter} changed in number or "
            "place; take the inserted cells out (metadata.exercise_cells) and insert "
            "them again"
        )
    for before, cell in zip(have, want):
        if "id" in before:
            cell.id = before.id
        if cell.cell_type == "code" and _same_code(before.source, cell.source):
            cell.outputs = before.outputs
            cell.execution_count = before.execution_count
        nb.cells[next(i for i, c in enumerate(nb.cells) if c is before)] = cell
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", type=pathlib.Path)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true")
    mode.add_argument("--check", action="store_true")
    mode.add_argument("--refresh", action="store_true")
    args = parser.parse_args(argv)
    nb = nbformat.read(args.notebook, as_version=4)
    chapter = args.notebook.stem
    if args.check:
        found = differences(nb, chapter)
        for line in found:
            print(f"{args.notebook}: {line}")
        if not found:
            print(f"{args.notebook}: the inserted cells match the definitions")
        return 1 if found else 0
    changed = refresh(nb, chapter) if args.refresh else insert(nb, chapter)
    if changed and not args.dry_run:
        nbformat.write(nb, args.notebook)
    done = "refreshed" if args.refresh else "inserted"
    dry = " (dry run)" if args.dry_run else ""
    print(f"{args.notebook}: {done if changed else 'already there'}{dry}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
