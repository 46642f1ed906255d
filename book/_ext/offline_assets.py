"""Serve MathJax and the ipywidgets embed scripts from the book itself when available.

``tools/fetch_vendor.sh`` (run by ``make book``/``make test``) fetches pinned versions from the
npm registry into ``_vendor/`` (git-ignored). When that folder is complete, this extension adds
``_vendor/static`` to the static files (``_vendor/axe``, the accessibility engine the browser test
injects, stays out of the book) and points Sphinx's MathJax and myst-nb's widget loader at the local
copies, so the rendered book needs no internet. Otherwise the CDN defaults stay in place.
"""
from __future__ import annotations

import pathlib

VENDOR = pathlib.Path(__file__).resolve().parents[2] / "_vendor"


def _configure(app, config) -> None:
    if not (VENDOR / ".versions").exists():
        return
    config.html_static_path = list(config.html_static_path) + [str(VENDOR / "static")]
    config.mathjax_path = "mathjax/tex-chtml.js"
    config.nb_ipywidgets_js = {
        "widgets/require.js": {},
        # icon fonts from _static/widgets; MathJax 2's Hub.Queue (used by widget labels) on MathJax 3
        "widgets/widgets-compat.js": {},
        "widgets/embed-amd.js": {"data-jupyter-widgets-cdn": "https://cdn.jsdelivr.net/npm/",
                                 "data-jupyter-widgets-cdn-only": "false"},
    }


def setup(app):
    app.connect("config-inited", _configure, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
