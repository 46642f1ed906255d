"""Insert a chapter's predict-then-measure exercise and discussion scaffolds into its notebook.

    python tools/exercise_cells/insert.py book/deeplab/03_depthwise_separable.ipynb [--dry-run]

For chapter agents: the cells come from ``tools/exercise_cells/<chapter stem>.py`` (see ``_cells.py``).
The predict-then-measure exercise is appended after the chapter's last exercise, numbered next; each
scaffold goes right after the text of its discussion exercise (a markdown cell holding several exercise
headings is split first, one cell per exercise). Idempotent: cells carry ``metadata.exercise_cells``,
and a notebook that has them already is left unchanged. Re-execute the chapter afterwards.
"""
from __future__ import annotations

import argparse
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


def _cell(spec: Dict, chapter: str, role: str, number: int = 0) -> nbformat.NotebookNode:
    source = spec["source"].replace("{n}", str(number)) if number else spec["source"]
    cell = (nbformat.v4.new_markdown_cell(source) if spec["cell_type"] == "markdown"
            else nbformat.v4.new_code_cell(source))
    if spec["tags"]:
        cell.metadata["tags"] = list(spec["tags"])
    cell.metadata["exercise_cells"] = f"{chapter}:{role}"
    return cell


def _split(cells: List[nbformat.NotebookNode]) -> List[nbformat.NotebookNode]:
    out = []
    for cell in cells:
        starts = [m.start() for m in re.finditer(r"^### Exercise \d+", cell.source, re.M)] \
            if cell.cell_type == "markdown" else []
        if len(starts) > 1 or (starts and starts[0] > 0):
            bounds = ([0] if starts[0] > 0 else []) + starts + [len(cell.source)]
            for a, b in zip(bounds, bounds[1:]):
                if cell.source[a:b].strip():
                    new = nbformat.v4.new_markdown_cell(cell.source[a:b].strip("\n"))
                    new.metadata = dict(cell.metadata)
                    out.append(new)
        else:
            out.append(cell)
    return out


def insert(nb: nbformat.NotebookNode, chapter: str) -> bool:
    """Insert the chapter's cells into ``nb`` (in place); False if they are there already."""
    if any(str(c.metadata.get("exercise_cells", "")).startswith(f"{chapter}:") for c in nb.cells):
        return False
    module = definitions(chapter)
    cells = _split(nb.cells)
    numbers = [int(m.group(1)) for c in cells if c.cell_type == "markdown"
               for m in re.finditer(r"^### Exercise (\d+)", c.source, re.M)]
    number = max(numbers, default=0) + 1
    for exercise, specs in sorted(getattr(module, "SCAFFOLDS", {}).items(), reverse=True):
        at = next((i for i, c in enumerate(cells) if c.cell_type == "markdown"
                   and re.search(rf"^### Exercise {exercise}\b", c.source, re.M)), None)
        if at is None:
            raise ValueError(f"exercise_cells: {chapter} has no Exercise {exercise} for its scaffold")
        cells[at + 1:at + 1] = [_cell(s, chapter, f"scaffold-{exercise}") for s in specs]
    cells += [_cell(s, chapter, "predict", number) for s in module.PREDICT]
    nb.cells = cells
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", type=pathlib.Path)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    nb = nbformat.read(args.notebook, as_version=4)
    changed = insert(nb, args.notebook.stem)
    if changed and not args.dry_run:
        nbformat.write(nb, args.notebook)
    print(f"{args.notebook}: {'inserted' if changed else 'already there'}{' (dry run)' if args.dry_run else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
