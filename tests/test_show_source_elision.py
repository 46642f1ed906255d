"""show_source: listings elide input validation (and say so) and fit the book's column."""
from __future__ import annotations

import pytest

from tutorial_lib.layers.all_mlp_decoder import AllMLPDecoder
from tutorial_lib.layers.mix_ffn import MixFFN
from tutorial_lib.utils import ELIDED, elide_validation, show_source

#: characters of code that fit the rendered column at 1280 px without scrolling
COLUMN = 84


def test_validation_is_elided_and_the_listing_says_so():
    full = repr(show_source(MixFFN.forward, elide_checks=False))
    short = repr(show_source(MixFFN.forward))
    assert "check_token_grid" in full
    assert short.count(ELIDED) == 1  # one grouped check, one comment (issue 24)
    code = short.replace(ELIDED, "")
    assert "check_" not in code and "raise" not in code
    assert "x = self.dwconv(x)" in short  # the computation stays


def test_runs_of_checks_collapse_into_one_comment_and_other_ifs_stay():
    source = (
        "def f(x, n):\n"
        "    check_positive(n, 'n')\n"
        "    if x.ndim != 4:\n"
        "        got = x.ndim\n"
        "        raise ValueError(f'expected 4, got {got}')\n"
        "    if n > 2:\n"
        "        x = x * 2\n"
        "    for name in ('a', 'b'):\n"
        "        check_positive(n, name)\n"
        "    return x\n"
    )
    out = elide_validation(source)
    assert out.count(ELIDED) == 2
    assert "if n > 2:" in out and "x = x * 2" in out and "return x" in out
    code = out.replace(ELIDED, "")
    assert "raise" not in code and "check_positive" not in code
    compile(out, "<listing>", "exec")  # still valid Python


@pytest.mark.parametrize("obj", [MixFFN, AllMLPDecoder])
def test_listings_fit_the_column(obj):
    lines = repr(show_source(obj)).splitlines()
    assert max(map(len, lines)) <= COLUMN


def test_every_library_listing_still_parses_after_elision():
    """Eliding never leaves broken code: nested checks inside an elided ``if`` are not
    elided twice, and a block made only of checks (``else: raise ...``) is kept."""
    import ast
    import importlib
    import inspect
    import pkgutil
    import textwrap

    import tutorial_lib

    count = 0
    for info in pkgutil.walk_packages(tutorial_lib.__path__, "tutorial_lib."):
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__module__ == info.name:
                ast.parse(elide_validation(textwrap.dedent(inspect.getsource(obj))))
                count += 1
    assert count > 200


def test_nested_checks_keep_the_code_after_them():
    source = (
        "def f(x, grid):\n"
        "    if grid != 3:\n"
        "        if not x:\n"
        "            raise ValueError('no')\n"
        "        x = resize(x,\n"
        "                   grid)\n"
        "    return x\n"
    )
    out = elide_validation(source)
    assert "x = resize(x," in out and "grid)" in out and "return x" in out
    assert out.count(ELIDED) == 1
    ast_ok = compile(out, "<listing>", "exec")
    assert ast_ok is not None


def test_listing_html_uses_classes_and_the_book_recovers_the_exact_source():
    """The HTML twin is classed Pygments (its colours scoped to the listing, light and dark); the
    book build turns it back into the exact source, shown as a theme code block."""
    import re
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book" / "_ext"))
    import html_fixes

    listing = show_source(MixFFN)
    page = listing._repr_html_()
    assert page.startswith('<div class="tl-source">') and 'class="highlight"' in page
    assert 'style="' not in page.split("</style>", 1)[1], "colours come from classes, not inline styles"
    for rule in re.search(r"<style>(.*)</style>", page, re.S).group(1).splitlines():
        assert ".tl-source" in rule.split("{")[0], f"unscoped CSS would restyle the notebook: {rule}"
    assert "data-jp-theme-light" in page  # JupyterLab's dark theme gets dark colours
    assert html_fixes.listing_text(page) == repr(listing) + "\n"
    assert html_fixes.listing_text("<div class='other'><pre>x</pre></div>") is None
