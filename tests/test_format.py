"""The library's listings read like the paper, not like the formatter's workarounds.

``show_source`` prints the library's code in the chapters, so its shape is part of the
page (CONTRIBUTING §3). Two checks:

* one formatter, configured in ``pyproject.toml`` (``[tool.ruff]``, width 84), and the
  library is formatted with it (``ruff format --check``);
* no line the formatter broke around a comment: when ``code  # comment`` is longer than
  the width, ``ruff``/``black`` split the *code* and leave the comment after a lone
  closing bracket (``x = f(\\n    x\\n)  # (B, C, H, W)``). Such a comment belongs on its
  own line above, or the line needs a shorter form or a named intermediate.
"""

from __future__ import annotations

import io
import pathlib
import re
import shutil
import subprocess
import sys
import tokenize

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "tutorial_lib"
#: a line that is only closing brackets (and a colon or comma), then a comment
LONE_BRACKET_COMMENT = re.compile(r"^\s*[\])}]+[:,]?\s*#")
#: a line that starts with a closing bracket (`)`, `) in xs:`, `)[0]  # ...`)
CLOSER = re.compile(r"^\s*[\])}]")


#: Modules with stranded comments that another change owns (issue 24): a strict xfail,
#: so the entry must go when the module is fixed.
NOT_YET_FIXED: set = set()


def _library_files() -> list:
    return [
        pytest.param(
            path,
            marks=pytest.mark.xfail(
                strict=True, reason="stranded comments (issue 24)"
            ),
        )
        if str(path.relative_to(LIBRARY)) in NOT_YET_FIXED
        else path
        for path in sorted(LIBRARY.rglob("*.py"))
    ]


def lone_bracket_comments(source: str) -> list:
    """Line numbers of lines that are a closing bracket carrying a comment."""
    return [
        i
        for i, line in enumerate(source.splitlines(), 1)
        if LONE_BRACKET_COMMENT.match(line)
    ]


def single_argument_splits(source: str) -> list:
    """Line numbers of calls split around one argument with a comment at either end:
    ``f(`` / ``arg`` / ``)  # comment`` or ``f(  # comment`` / ``arg`` / ``)``."""
    lines = source.splitlines()
    comments = {
        tok.start[0]
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    }
    found = []
    for n in range(1, len(lines) - 1):  # n: the opener's line number
        opener, arg, closer = lines[n - 1], lines[n], lines[n + 1]
        code = opener.split("#")[0].rstrip() if n in comments else opener.rstrip()
        if not code.endswith(("(", "[")) or not CLOSER.match(closer):
            continue
        if arg.rstrip().endswith((",", "(", "[", "{")):
            continue
        if n in comments or n + 2 in comments:
            found.append(n)
    return found


def test_the_detectors_find_what_the_formatter_breaks():
    broken = (
        "def f(self, x):\n"
        "    grid = self.encoder.grid_for(\n"
        "        x\n"
        "    )  # validates (B, C, H, W)\n"
        "    if (\n"
        "        self.neck is not None\n"
        "    ):  # the class token never enters\n"
        "        return x\n"
    )
    assert lone_bracket_comments(broken) == [4, 7]
    assert single_argument_splits(broken) == [2, 5]
    fine = (
        "def f(self, x):\n"
        "    # validates (B, C, H, W)\n"
        "    grid = self.encoder.grid_for(x)\n"
        "    y = g(\n"
        "        x,\n"
        "        grid,\n"
        "    )\n"
        "    return y  # (B, N, C)\n"
    )
    assert lone_bracket_comments(fine) == [] and single_argument_splits(fine) == []


@pytest.mark.parametrize(
    "path", _library_files(), ids=lambda p: str(p.relative_to(LIBRARY))
)
def test_no_comment_is_stranded_after_a_closing_bracket(path):
    source = path.read_text()
    where = lone_bracket_comments(source) + single_argument_splits(source)
    lines = source.splitlines()
    assert not where, (
        "put the comment on its own line above, or shorten the line:\n"
        + (
            "\n".join(
                f"{path.name}:{n}: {lines[n - 1].strip()}"
                for n in sorted(set(where))
            )
        )
    )


def _ruff() -> list:
    exe = shutil.which("ruff", path=str(pathlib.Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "ruff"]


def test_the_formatter_is_configured_at_the_listing_width():
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]
    assert (
        config["line-length"] == 84
    )  # CONTRIBUTING §3: library code at 84 columns
    contributing = (ROOT / "CONTRIBUTING.md").read_text()
    assert "ruff format" in contributing and "84 columns" in contributing
    pinned = (ROOT / "requirements.txt").read_text()
    assert re.search(r"^ruff==\d+\.\d+\.\d+$", pinned, re.M), (
        "pin ruff in requirements.txt"
    )


def test_the_library_is_formatted():
    """``ruff format --check`` on the library (the files listed under
    ``[tool.ruff.format] exclude`` are not yet formatted with it)."""
    result = subprocess.run(
        _ruff() + ["format", "--check", "--diff", "tutorial_lib"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, (
        "run `.venv/bin/ruff format tutorial_lib` (then check that no comment was "
        "stranded: tests/test_format.py)\n"
        + result.stdout[-4000:]
        + result.stderr[-2000:]
    )
