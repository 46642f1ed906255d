"""Small fixes to the generated HTML so that the book loads with a clean browser console.

The real-browser check (``tests/browser``) fails on any JavaScript console error, and two come
from the theme stack (Jupyter Book 1.0.4, sphinx-book-theme 1.x, pydata-sphinx-theme 0.17), not
from the book (and ``static/page.css`` adds the page-width rule's styles):

* sphinx-thebe and sphinx-togglebutton each register an inline ``<script>`` twice (once per
  Sphinx event they listen to), so the page declares ``const THEBE_JS_URL`` twice and the second
  declaration throws ``SyntaxError: Identifier 'THEBE_JS_URL' has already been declared``. We
  drop repeated inline scripts (same body) and repeated files (same path) from each page.
* pydata-sphinx-theme writes ``dataset.mode = localStorage.getItem("mode") || ""`` and then
  logs ``Got invalid theme mode: .`` because Jupyter Book sets no ``default_mode`` (a template
  context value, documented as ``html_context = {"default_mode": ...}``). We set it to ``auto``
  (follow the reader's system preference), which is what the theme falls back to anyway.
"""
from __future__ import annotations

import pathlib
from typing import Any, Dict

STATIC = pathlib.Path(__file__).parent / "static"


def _page_context(app, pagename: str, templatename: str, context: Dict[str, Any], doctree) -> None:
    if not context.get("default_mode"):
        context["default_mode"] = "auto"
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:
        filename = getattr(script, "filename", script)
        attributes = getattr(script, "attributes", {}) or {}
        key = (str(filename) if filename else None, attributes.get("body"))
        if key in seen:
            continue
        seen.add(key)
        kept.append(script)
    scripts[:] = kept


def _add_static(app) -> None:
    app.config.html_static_path.append(str(STATIC))


def setup(app):
    # page.css: the page-width rule (code at 12 px, wrapping text outputs); see its comments
    app.connect("builder-inited", _add_static)
    app.add_css_file("page.css")
    app.connect("html-page-context", _page_context, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
