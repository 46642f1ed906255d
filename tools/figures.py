"""The book's figure captions, names and alt text (tools/figures.yml) in the chapters' cell metadata.

    python tools/figures.py apply    # write tools/figures.yml into the notebooks' cell metadata
    python tools/figures.py check    # fail on a figure cell without name, caption or alt text,
                                     # or a registry entry whose cell is gone
    python tools/figures.py list     # every figure cell: notebook, cell id, name

A figure cell is a code cell with an image output; a widget cell (a widget view output) needs alt
text only. The metadata is myst-nb's (``mystnb: {figure: {name, caption}, image: {alt}}``): the
book build renders the output as a numbered, captioned figure ("Figure 10.2", see
book/_ext/html_fixes.py); Jupyter and Colab ignore it. Only metadata changes: sources and outputs
stay as executed, so no re-execution is needed.
"""
from __future__ import annotations

import pathlib
import sys
from typing import Dict, Iterator, List, Tuple

import nbformat
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
REGISTRY = ROOT / "tools" / "figures.yml"
sys.path.insert(0, str(ROOT / "tools"))
import notebooks  # noqa: E402  (tools/notebooks.py)

WIDGET = "application/vnd.jupyter.widget-view+json"


def registry() -> Dict[str, Dict[str, dict]]:
    return yaml.safe_load(REGISTRY.read_text()) or {}


def figure_cells(nb) -> Iterator[Tuple[object, str]]:
    """(cell, kind) for each cell that shows a figure: kind "figure" (an image output) or
    "widget" (a widget view, whose picture the widget draws)."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        data = [o.get("data", {}) for o in cell.get("outputs", [])]
        if any(k.startswith("image/") for d in data for k in d):
            yield cell, "figure"
        elif any(WIDGET in d for d in data):
            yield cell, "widget"


def problems(path: pathlib.Path, nb) -> List[str]:
    out = []
    for cell, kind in figure_cells(nb):
        meta = cell.metadata.get("mystnb", {})
        where = f"{path.relative_to(ROOT)} cell {cell.get('id')}"
        if not (meta.get("image") or {}).get("alt"):
            out.append(f"{where}: no alt text")
        if kind == "figure":
            figure = meta.get("figure") or {}
            if not figure.get("caption"):
                out.append(f"{where}: no caption")
            if not str(figure.get("name", "")).startswith("fig-"):
                out.append(f"{where}: no name (fig-...)")
    return out


def apply() -> int:
    entries = registry()
    missing = []
    for path in notebooks.chapters():
        rel = str(path.relative_to(ROOT))
        nb = nbformat.read(path, as_version=4)
        mine = entries.get(rel, {})
        changed = False
        ids = {c.get("id") for c in nb.cells}
        missing += [f"{rel}: registry names cell {cid}, which the notebook does not have"
                    for cid in mine if cid not in ids]
        for cell, kind in figure_cells(nb):
            entry = mine.get(cell.get("id"))
            if entry is None:
                missing.append(f"{rel} cell {cell.get('id')}: a {kind} with no entry in {REGISTRY.name}")
                continue
            meta = dict(cell.metadata.get("mystnb", {}))
            meta["image"] = {**meta.get("image", {}), "alt": entry["alt"]}
            if kind == "figure":
                meta["figure"] = {**meta.get("figure", {}), "name": entry["name"], "caption": entry["caption"]}
            if cell.metadata.get("mystnb") != meta:
                cell.metadata["mystnb"] = meta
                changed = True
        if changed:
            nbformat.write(nb, path)
            print(f"figures: {rel} updated")
    for line in missing:
        print(f"figures: {line}", file=sys.stderr)
    return 1 if missing else 0


def check() -> int:
    found = []
    names: Dict[str, str] = {}
    for path in notebooks.chapters():
        nb = nbformat.read(path, as_version=4)
        found += problems(path, nb)
        for cell, kind in figure_cells(nb):
            name = (cell.metadata.get("mystnb", {}).get("figure") or {}).get("name")
            if name and name in names:
                found.append(f"{path.name}: figure name {name} is also used in {names[name]}")
            elif name:
                names[name] = path.name
    for line in found:
        print(f"figures: {line}", file=sys.stderr)
    return 1 if found else 0


def list_figures() -> int:
    for path in notebooks.chapters():
        nb = nbformat.read(path, as_version=4)
        for cell, kind in figure_cells(nb):
            name = (cell.metadata.get("mystnb", {}).get("figure") or {}).get("name", "-")
            print(f"{path.relative_to(ROOT)}\t{cell.get('id')}\t{kind}\t{name}")
    return 0


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "check"
    sys.exit({"apply": apply, "check": check, "list": list_figures}[command]())
