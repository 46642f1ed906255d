"""Small fixes to the generated HTML: a clean browser console, and a page every reader can read.

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

Accessibility (issue #23; ``tests/browser/test_a11y.py`` runs axe-core on every page):

* ``show_source`` listings are shown as the theme's own code blocks: a stored listing's
  ``text/html`` (Pygments HTML, inline colours for Jupyter) becomes a Python ``literal_block``
  here, highlighted by the theme's Pygments CSS like every code cell, in light and dark mode.
  The stored HTML is not needed for that: the text is recovered from it exactly.
* Figures are numbered per chapter, "Figure 10.2": a chapter's number comes from its file name
  (``10_mix_ffn``); captions, names and alt text come from each cell's metadata
  (``mystnb: {figure: {caption, name}, image: {alt}}``, written by ``tools/figures.py``).
  A widget cell's ``mystnb.image.alt`` becomes the alt text of the widget's picture.
* ``static/a11y.js`` binds the visible sidebar toggles (the theme binds a hidden one), names
  controls after their visible labels, marks static widgets as such, links figures to their
  full-size image and fixes the bibliography's list roles; ``static/page.css`` adds focus
  rings, dark-mode link colours and code that scrolls instead of wrapping.
* MathJax formulas are not each a tab stop (MathJax's ``inTabOrder`` menu setting off).
"""
from __future__ import annotations

import html
import pathlib
import re
from typing import Any, Dict, List

from docutils import nodes

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


#: A ``show_source`` listing's stored HTML: Pygments' ``<div class="highlight"><pre>``, with
#: inline colours (``noclasses``) or classes, possibly inside ``<div class="tl-source">``.
_LISTING = re.compile(r'^\s*(<div class="tl-source">\s*)?(<style[^>]*>.*?</style>\s*)?'
                      r'<div class="highlight"[^>]*>\s*<pre', re.S)


def listing_text(raw_html: str):
    """The Python source of a ``show_source`` listing's HTML, or None for any other HTML."""
    if not _LISTING.match(raw_html):
        return None
    body = re.sub(r"<style[^>]*>.*?</style>", "", raw_html, flags=re.S)
    pre = re.search(r"<pre[^>]*>(.*?)</pre>", body, re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", pre.group(1))).rstrip("\n") + "\n"


def _listings_as_code(app, doctree, docname: str) -> None:
    """Each listing's raw HTML becomes a Python code block in the theme's highlighting."""
    for raw in list(doctree.findall(nodes.raw)):
        if "html" not in raw.get("format", "").split():
            continue
        text = listing_text(raw.astext())
        if text is None:
            continue
        block = nodes.literal_block(text, text, language="python")
        raw.replace_self(block)
        # replace_self copies the raw node's classes ("output text_html"), which the theme
        # styles as an HTML output (a light box in dark mode): the block is code, not HTML
        block["classes"] = ["tl-source"]


def _widget_alt(app, doctree, docname: str) -> None:
    """A widget cell's ``mystnb.image.alt`` travels to the page for ``a11y.js`` (the widget's
    picture is drawn by the widget manager in the browser, after the build)."""
    for cell in doctree.findall(nodes.container):
        if cell.get("nb_element") != "cell_code":
            continue
        alt = ((cell.get("cell_metadata") or {}).get("mystnb") or {}).get("image", {}).get("alt")
        if not alt or not any("widget-view" in r.astext() for r in cell.findall(nodes.raw)):
            continue
        cell += nodes.raw("", f'<p class="tl-widget-alt" hidden>{html.escape(alt)}</p>', format="html")


_CHAPTER = re.compile(r"^(\d+)_")


def _number_figures_by_chapter(app, env) -> List[str]:
    """Figure numbers "chapter.n": Sphinx numbers figures through the whole book when the
    toctree is not numbered (the chapters carry their number in their titles); a chapter's
    number is its file name's (``book/segformer/10_mix_ffn`` -> 10)."""
    changed = []
    for docname, by_type in env.toc_fignumbers.items():
        match = _CHAPTER.match(docname.rsplit("/", 1)[-1])
        if not match:
            continue
        chapter = int(match.group(1))
        for figtype, numbers in by_type.items():
            ordered = sorted(numbers, key=lambda fid: numbers[fid])
            renumbered = {fid: (chapter, i + 1) for i, fid in enumerate(ordered)}
            if renumbered != numbers:
                by_type[figtype] = renumbered
                changed.append(docname)
    return sorted(set(changed))


def _configure(app, config) -> None:
    # Figure numbers with a word a screen reader and a cross-reference can both use.
    config.numfig = True
    config.numfig_format = {**(config.numfig_format or {}), "figure": "Figure %s"}
    # MathJax 3: a formula is not a tab stop (its menu is still on the context menu / Space).
    mj = dict(config.mathjax3_config or {})
    options = dict(mj.get("options", {}))
    menu = dict(options.get("menuOptions", {}))
    menu["settings"] = {**menu.get("settings", {}), "inTabOrder": False}
    options["menuOptions"] = menu
    mj["options"] = options
    config.mathjax3_config = mj


def setup(app):
    # page.css: the page-width rule (code at 12 px, wrapping text outputs) and the accessibility
    # fixes (focus rings, dark-mode links, code that scrolls); see its comments
    app.connect("builder-inited", _add_static)
    app.connect("config-inited", _configure, priority=900)
    app.connect("doctree-resolved", _listings_as_code)
    app.connect("doctree-resolved", _widget_alt)
    app.connect("env-get-updated", _number_figures_by_chapter, priority=900)
    app.add_css_file("page.css")
    app.add_js_file("a11y.js", loading_method="defer")
    app.connect("html-page-context", _page_context, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
