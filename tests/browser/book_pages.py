"""The pages of the book as ``_toc.yml`` lists them (shared by the browser tests)."""
from __future__ import annotations

import pathlib
from typing import List

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
# One timeout for page loads and waits: a shared CI machine under load (2 cores, load ~20) takes
# 40 s and more for the first page of a cold chromium (MathJax, widgets); a real hang still fails.
PAGE_TIMEOUT_MS = 90_000


def toc_pages() -> List[str]:
    """Every page of ``_toc.yml`` as a docname (``book/basics/01_semantic_segmentation``), in order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "file" in node:
                pages.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(toc.get("parts", toc.get("chapters", [])))
    return [p[:-len(pathlib.Path(p).suffix)] if pathlib.Path(p).suffix in {".md", ".ipynb"} else p
            for p in pages]
