"""Notebook conveniences: seeding, the standard setup, and source listings."""

from __future__ import annotations

import ast
import inspect
import logging
import os
import random
import re
import textwrap
import warnings
from typing import Any, Optional

import numpy as np
import torch

__all__ = [
    "seed_everything",
    "setup_notebook",
    "show_source",
    "SourceListing",
    "in_colab",
    "glue",
]

#: MIME-type prefix of a glued value that is stored but not shown (myst-nb's ``glue(..., display=False)``).
GLUE_PREFIX = "application/papermill.record/"


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return (
        "COLAB_RELEASE_TAG" in os.environ
        or "google.colab" in __import__("sys").modules
    )


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch so that a notebook gives the same numbers
    every run."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup_notebook(seed: int = 0, version: Optional[str] = None) -> None:
    """The standard first call of every chapter.

    Seeds every generator, sets short print options for tensors and arrays, silences
    fvcore's per-op log lines (``profiling.count_macs`` decides explicitly what it
    counts), and sets matplotlib defaults that read well both in Jupyter and in the
    rendered book.

    ``version`` is the ``tutorial_lib`` version the chapter was executed with (the
    setup cell passes it); a different installed version gets a warning, because the
    chapter's stored outputs may then differ from what the reader sees.
    """
    if version is not None and version != __import__("tutorial_lib").__version__:
        warnings.warn(
            f"this chapter was executed with tutorial_lib {version}, but tutorial_lib "
            f"{__import__('tutorial_lib').__version__} is installed: numbers and listings may differ "
            f"from the book's (pip install the {version} release to match)",
            stacklevel=2,
        )
    seed_everything(seed)
    torch.set_printoptions(precision=4, sci_mode=False, linewidth=100)
    np.set_printoptions(precision=4, suppress=True, linewidth=100)
    for name in ("fvcore", "fvcore.nn.jit_analysis"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # fvcore's jit tracing emits TracerWarnings for shape-dependent Python code; they say
    # nothing about the counts, only that the trace is specialised to the given input size.
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    try:
        import matplotlib as mpl

        mpl.rcParams.update(
            {
                "figure.dpi": 100,
                "savefig.dpi": 100,
                "figure.figsize": (7.0, 3.5),
                "axes.grid": False,
                "image.interpolation": "nearest",
                "font.size": 10,
            }
        )
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        pass


class SourceListing:
    """The source code of an object, shown highlighted in Jupyter and as plain text
    elsewhere.

    The plain-text form is what nbval compares, so a library change that makes a
    chapter's listing stale fails the notebook tests.

    The HTML form is Pygments' ``<div class="highlight">`` with CSS classes, inside a
    ``<div class="tl-source">`` that carries its own light and dark colours for Jupyter,
    JupyterLab's dark theme and VS Code. The book does not use that HTML's colours: its build
    turns a listing into an ordinary Python code block (``book/_ext/html_fixes.py``), so it
    follows the theme's highlighting and colour mode like every other code block.
    """

    #: Pygments styles for light and dark notebook themes (the first one installed is used):
    #: the accessible-pygments styles the book's theme uses, else Pygments' own.
    LIGHT_STYLES = ("a11y-high-contrast-light", "default")
    DARK_STYLES = ("a11y-high-contrast-dark", "monokai")
    #: The dark colours apply under JupyterLab's and VS Code's dark themes.
    DARK_SCOPES = (
        '[data-jp-theme-light="false"] .tl-source',
        "body.vscode-dark .tl-source",
    )

    def __init__(self, source: str, name: str) -> None:
        self.source = source
        self.name = name

    def __repr__(self) -> str:
        return self.source.rstrip("\n")

    def _repr_html_(self) -> str:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer
        from pygments.util import ClassNotFound

        code = highlight(
            self.source, PythonLexer(), HtmlFormatter(cssclass="highlight")
        )
        used = set(re.findall(r'<span class="([\w-]+)"', code))

        def style_defs(names: tuple, scopes: list) -> str:
            """The style's rules for this listing's token classes, under ``scopes`` only."""
            for name in names:
                try:
                    formatter = HtmlFormatter(style=name)
                except ClassNotFound:
                    continue
                rules = formatter.get_style_defs(
                    [f"{scope} .highlight" for scope in scopes]
                )
                kept = []
                for rule in rules.splitlines():
                    selector = rule.split("{", 1)[0].strip()
                    if not selector.startswith(tuple(scopes)):
                        continue  # Pygments' unscoped rules (pre, line numbers)
                    last = selector.split(",")[0].split()[-1]
                    if last == ".highlight" or last.lstrip(".") in used:
                        kept.append(rule.split("/*")[0].strip())
                return "\n".join(kept)
            return ""  # pragma: no cover - Pygments always has its defaults

        css = (
            style_defs(self.LIGHT_STYLES, [".tl-source"])
            + "\n"
            + style_defs(self.DARK_STYLES, list(self.DARK_SCOPES))
        )
        return f'<div class="tl-source"><style>{css}</style>{code}</div>'


#: The comment that stands in for elided input validation in a listing.
ELIDED = "# (input checks elided: they raise ValueError)"


def _is_validation(node: ast.stmt) -> bool:
    """A statement that only validates: a ``check_*(...)`` call, an ``if`` whose
    body only validates (ends in ``raise ValueError``), or a loop over such
    statements."""
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        func = node.value.func
        name = (
            func.id
            if isinstance(func, ast.Name)
            else func.attr
            if isinstance(func, ast.Attribute)
            else ""
        )
        return name.lstrip("_").startswith("check_")
    if isinstance(node, ast.Raise):
        exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        return isinstance(exc, ast.Name) and exc.id == "ValueError"
    if isinstance(node, ast.If) and not node.orelse:
        return all(
            _is_validation(n) or isinstance(n, ast.Assign) for n in node.body
        ) and _is_validation(node.body[-1])
    if isinstance(node, ast.For) and not node.orelse:
        return all(_is_validation(n) for n in node.body)
    return False


def elide_validation(source: str) -> str:
    """``source`` with its input-validation statements replaced by one
    :data:`ELIDED` comment per run of consecutive checks (the checks stay in the
    library; a listing shows the idea).
    """
    lines = source.splitlines(keepends=True)
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    # (first line, last line, indent, block) of consecutive validation statements, 1-based
    runs: list = []
    for parent in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            block = getattr(parent, field, None)
            if not isinstance(block, list):
                continue
            for stmt in block:
                if isinstance(stmt, ast.stmt) and _is_validation(stmt):
                    start = min(
                        [stmt.lineno]
                        + [d.lineno for d in getattr(stmt, "decorator_list", [])]
                    )
                    if (
                        runs
                        and runs[-1][3] is block
                        and _only_blank(lines, runs[-1][1], start - 1)
                    ):
                        runs[-1] = (
                            runs[-1][0],
                            stmt.end_lineno,
                            runs[-1][2],
                            block,
                        )
                    else:
                        runs.append(
                            (start, stmt.end_lineno, stmt.col_offset, block)
                        )
    # ast.walk also visits the statements inside an elided ``if``: keep outer runs only
    outer: list = []
    for run in sorted(runs, key=lambda r: (r[0], -r[1])):
        whole_block = run[0] <= run[3][0].lineno and run[1] >= run[3][-1].end_lineno
        if whole_block:  # an ``else: raise ...`` is logic, and Python needs a body
            continue
        if not outer or run[0] > outer[-1][1]:
            outer.append(run)
    for first, last, indent, _ in reversed(outer):
        lines[first - 1 : last] = [" " * indent + ELIDED + "\n"]
    return "".join(lines)


def _only_blank(lines: list, after: int, upto: int) -> bool:
    return all(not lines[i].strip() for i in range(after, upto))


def show_source(obj: object, elide_checks: bool = True) -> SourceListing:
    """Return the highlighted source of a class, function or method from
    ``tutorial_lib``.

    Input validation (``check_*`` calls, ``if ...: raise ValueError``) is replaced
    by a comment saying so, so the listing reads like the paper's equation;
    ``elide_checks=False`` shows every line.
    """
    try:
        source = inspect.getsource(obj)
    except (TypeError, OSError) as err:
        raise ValueError(
            f"show_source: expected a class, function or method with Python source, "
            f"got {obj!r} ({err})"
        ) from None
    source = textwrap.dedent(source)
    if elide_checks:
        source = elide_validation(source)
    return SourceListing(source, getattr(obj, "__qualname__", repr(obj)))


def glue(name: str, value: Any, display: bool = False) -> None:
    """Store ``value`` under ``name`` for the book's ``{glue:text}`name``` roles;
    harmless elsewhere.

    Writes the same output as ``myst_nb.glue`` (a display message whose MIME types
    carry the ``application/papermill.record/`` prefix and whose metadata names the
    value), which the book build reads from the stored notebook — without importing
    ``myst_nb``, so a chapter runs wherever ``tutorial_lib`` is installed (Colab, a
    plain Jupyter). Outside IPython it does nothing; in Jupyter or Colab the output
    is invisible unless ``display=True``.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(
            f"glue: expected a name that is a Python identifier, got {name!r}"
        )
    try:
        import IPython
        import IPython.display
        from IPython.core.formatters import format_display_data
    except ImportError:  # no IPython: not in a notebook, nothing to store
        return
    if IPython.get_ipython() is None:
        return
    bundle, metadata = format_display_data(value)
    prefix = "" if display else GLUE_PREFIX
    metadata["scrapbook"] = {"name": name, "mime_prefix": prefix}
    IPython.display.display(
        {prefix + k: v for k, v in bundle.items()}, raw=True, metadata=metadata
    )
