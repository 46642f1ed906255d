"""No broken internal links anywhere in the built site: every relative ``href``/``src`` of every
HTML file names a file that exists, and every ``#anchor`` names an ``id`` on the target page.

Needs only the built HTML (no browser), but lives here because it checks the build; run with
``--run-browser`` by ``make test`` after the book build.
"""
from __future__ import annotations

import html.parser
import pathlib
import posixpath
import urllib.parse
from functools import lru_cache
from typing import Dict, List, Set, Tuple

EXTERNAL = ("http:", "https:", "mailto:", "javascript:", "data:", "tel:", "ftp:", "//")


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: List[Tuple[str, str]] = []
        self.ids: Set[str] = set()

    def handle_starttag(self, tag: str, attrs: List[Tuple[str, str]]) -> None:
        values: Dict[str, str] = {k: v for k, v in attrs if v is not None}
        for key in ("id", "name") if tag != "meta" else ():
            if key in values and (key == "id" or tag == "a"):
                self.ids.add(values[key])
        for key in ("href", "src"):
            if key in values and tag in {"a", "link", "img", "script", "iframe", "source", "video", "audio"}:
                self.links.append((tag, values[key].strip()))


@lru_cache(maxsize=None)
def parse(path: pathlib.Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return parser


def test_no_broken_internal_links(book_html: pathlib.Path) -> None:
    # Pages only: the theme copies its Jinja macro files (``webpack-macros.html``) into _static/
    # as assets; they are templates, never served as pages.
    files = sorted(p for p in book_html.rglob("*.html") if "_static" not in p.relative_to(book_html).parts)
    assert files, f"no HTML files in {book_html}"
    broken: List[str] = []
    checked = 0
    for source in files:
        for tag, link in parse(source).links:
            if not link or link.lower().startswith(EXTERNAL):
                continue
            parts = urllib.parse.urlsplit(link)
            target = source if not parts.path else pathlib.Path(
                posixpath.normpath(posixpath.join(source.parent.as_posix(), urllib.parse.unquote(parts.path))))
            where = f"{source.relative_to(book_html)}: <{tag}> {link}"
            checked += 1
            if book_html not in target.parents and target != book_html:
                broken.append(f"{where} (leaves the site)")
                continue
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{where} (no file {target.relative_to(book_html)})")
                continue
            fragment = urllib.parse.unquote(parts.fragment)
            if fragment and target.suffix == ".html" and fragment not in parse(target).ids:
                broken.append(f"{where} (no id {fragment!r} in {target.relative_to(book_html)})")
    assert checked > 0
    assert not broken, f"{len(broken)} broken internal link(s) of {checked}:\n  " + "\n  ".join(broken[:50])
