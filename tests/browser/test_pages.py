"""The built book in a real browser (headless chromium): every page of ``_toc.yml`` loads with a
clean console, its images load, its math is typeset by MathJax, its widgets render, and a notebook
page's Colab button opens that notebook in the repository. The search page finds every chapter.

Run by ``make test`` after the book build (``pytest tests/browser --run-browser``); skipped otherwise.
"""
from __future__ import annotations

import pathlib
import re
import urllib.parse
from typing import Dict, List

import pytest
import yaml

from book_pages import PAGE_TIMEOUT_MS, ROOT, toc_pages

PAGES = toc_pages()
NOTEBOOK_PAGES = [p for p in PAGES if (ROOT / f"{p}.ipynb").exists()]
SCREENSHOT_PAGES = set(PAGES[:2]) | set(NOTEBOOK_PAGES[:: max(1, len(NOTEBOOK_PAGES) // 4)])
# Chromium asks every origin for /favicon.ico; the book has no favicon, so the request 404s. That
# is the browser probing, not a resource the page references, so it is not a page error.
IGNORED_URLS = re.compile(r"/favicon\.ico$")

WAIT_FOR_IMAGES = """async () => {
  const images = Array.from(document.images);
  images.forEach(img => { img.loading = "eager"; });
  await Promise.all(images.map(img => img.complete ? null :
      new Promise(done => { img.addEventListener("load", done); img.addEventListener("error", done); })));
  return images.map(img => ({src: img.currentSrc || img.src, width: img.naturalWidth}));
}"""

MATH_STATE = """() => {
  const math = Array.from(document.querySelectorAll("span.math, div.math"));
  return {total: math.length,
          typeset: math.filter(el => el.querySelector("mjx-container")).length,
          errors: document.querySelectorAll("mjx-merror").length};
}"""

WIDGET_STATE = """() => {
  const views = Array.from(document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]'));
  const rendered = views.filter(s => {
    const host = s.previousElementSibling;
    return host && host.classList.contains("widget-subarea") && host.querySelector(".jupyter-widgets, .widget-box, .lm-Widget, .p-Widget");
  });
  return {total: views.length, rendered: rendered.length};
}"""


def colab_url(docname: str) -> str:
    """The Colab link Jupyter Book should put on a notebook page, from ``_config.yml``."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = config["repository"]
    slug = urllib.parse.urlparse(repo["url"]).path.strip("/")
    if slug.endswith(".git"):
        slug = slug[:-4]
    book = (repo.get("path_to_book") or "").strip("/")
    path = f"{book}/{docname}.ipynb" if book else f"{docname}.ipynb"
    base = config["launch_buttons"]["colab_url"].rstrip("/")
    return f"{base}/github/{slug}/blob/{repo.get('branch', 'main')}/{path}"


def load(page, url: str) -> List[str]:
    """Open ``url`` and return every problem the browser reports while it loads and settles."""
    problems: List[str] = []

    def on_console(message) -> None:
        location = (message.location or {}).get("url", "")
        if message.type == "error" and not IGNORED_URLS.search(location):
            problems.append(f"console error: {message.text} (at {location or 'unknown'})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"uncaught exception: {error}"))
    page.on("requestfailed", lambda request: None if IGNORED_URLS.search(request.url) else
            problems.append(f"request failed: {request.url} ({request.failure})"))
    page.on("response", lambda response: None if response.status < 400 or IGNORED_URLS.search(response.url)
            else problems.append(f"HTTP {response.status}: {response.url}"))
    response = page.goto(url, wait_until="networkidle")
    assert response is not None and response.ok, f"{url}: HTTP {response and response.status}"
    return problems


@pytest.mark.parametrize("docname", PAGES)
def test_page_renders(page, base_url: str, book_html: pathlib.Path, screenshots: pathlib.Path,
                      docname: str) -> None:
    html_file = book_html / f"{docname}.html"
    assert html_file.exists(), f"{docname}: listed in _toc.yml but {html_file} was not built"
    problems = load(page, f"{base_url}/{docname}.html")

    images = page.evaluate(WAIT_FOR_IMAGES)
    broken = [img["src"] for img in images if img["width"] == 0]
    assert not broken, f"{docname}: images that did not load: {broken}"

    math = page.evaluate(MATH_STATE)
    if math["total"]:
        try:
            page.wait_for_function(f"({MATH_STATE})().typeset === {math['total']}", timeout=PAGE_TIMEOUT_MS)
        except Exception:  # noqa: BLE001 - report the state below instead of a bare timeout
            pass
        math = page.evaluate(MATH_STATE)
        assert math["typeset"] == math["total"], \
            f"{docname}: MathJax typeset {math['typeset']} of {math['total']} math elements"
        assert math["errors"] == 0, f"{docname}: MathJax reported {math['errors']} TeX error(s)"

    widgets = page.evaluate(WIDGET_STATE)
    if widgets["total"]:
        try:
            page.wait_for_function(f"({WIDGET_STATE})().rendered === {widgets['total']}", timeout=PAGE_TIMEOUT_MS)
        except Exception:  # noqa: BLE001
            pass
        widgets = page.evaluate(WIDGET_STATE)
        assert widgets["rendered"] == widgets["total"], \
            f"{docname}: {widgets['rendered']} of {widgets['total']} widget views rendered"

    if docname in NOTEBOOK_PAGES:
        links = page.eval_on_selector_all("a[href*='colab.research.google.com']", "els => els.map(e => e.href)")
        assert colab_url(docname) in links, f"{docname}: expected a Colab link {colab_url(docname)}, got {links}"

    page.wait_for_timeout(300)  # late console errors (deferred scripts) still count
    assert not problems, f"{docname}:\n  " + "\n  ".join(problems)
    if docname in SCREENSHOT_PAGES:
        page.screenshot(path=str(screenshots / (docname.replace("/", "__") + ".png")), full_page=True)


def test_colab_links_point_at_notebooks_in_the_repository() -> None:
    """The Colab URL names a file that exists at that path in this repository."""
    assert NOTEBOOK_PAGES, "no notebook chapters in _toc.yml"
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    book = (config["repository"].get("path_to_book") or "").strip("/")
    for docname in NOTEBOOK_PAGES:
        path = colab_url(docname).split("/blob/", 1)[1].split("/", 1)[1]
        assert path == (f"{book}/" if book else "") + f"{docname}.ipynb"
        assert (ROOT / path).exists(), f"Colab link names {path}, which is not in the repository"


def search_word(book_html: pathlib.Path, docname: str) -> str:
    """A distinctive word of the page title: its longest alphabetic word."""
    text = (book_html / f"{docname}.html").read_text(encoding="utf-8")
    title = re.search(r"<h1[^>]*>(.*?)</h1>", text, re.S)
    assert title, f"{docname}: no <h1> title"
    words = re.findall(r"[A-Za-z][A-Za-z\-]{3,}", re.sub(r"<[^>]+>", " ", title.group(1)))
    assert words, f"{docname}: no searchable word in the title {title.group(1)!r}"
    return max(words, key=len).strip("-")


@pytest.mark.parametrize("docname", NOTEBOOK_PAGES)
def test_search_finds_chapter(page, base_url: str, book_html: pathlib.Path, docname: str) -> None:
    word = search_word(book_html, docname)
    problems = load(page, f"{base_url}/search.html?q={urllib.parse.quote(word)}")
    page.wait_for_function("() => { const s = document.querySelector('.search-summary');"
                           " return s && /finished|found|did not match/i.test(s.textContent); }", timeout=PAGE_TIMEOUT_MS)
    hits = page.eval_on_selector_all("#search-results ul.search li a", "els => els.map(e => e.getAttribute('href'))")
    pages_found = {h.split("#")[0].split("?")[0] for h in hits}
    assert f"{docname}.html" in pages_found, f"searching {word!r} did not find {docname}; found {sorted(pages_found)}"
    assert not problems, f"search page:\n  " + "\n  ".join(problems)


# Elements of the page body that would need a horizontal scroll bar (or clip) at 1280 px: code
# cells, source listings, text outputs, tables, display math. A few pixels of slack absorb
# sub-pixel rounding.
OVERFLOWING = """() => {
  const body = document.querySelector("main article") || document.querySelector("main") || document.body;
  const out = [];
  for (const el of body.querySelectorAll("pre, table, div.math, mjx-container[display='true'], .cell_output > div, .highlight")) {
    if (!el.offsetParent) continue;  // hidden (a collapsed toggle)
    const over = el.scrollWidth - el.clientWidth;
    if (over > 4) {
      const text = (el.innerText || "").split("\\n").reduce((a, b) => (b.length > a.length ? b : a), "");
      out.push({tag: el.tagName.toLowerCase() + (el.className ? "." + String(el.className).split(" ")[0] : ""),
                over: over, widest: text.slice(0, 100)});
    }
  }
  return out;
}"""


@pytest.mark.parametrize("docname", PAGES)
def test_nothing_needs_horizontal_scrolling(page, base_url: str, book_html: pathlib.Path,
                                            docname: str) -> None:
    """The page-width rule (CONTRIBUTING §4): no code cell, listing, text output, table or
    formula is wider than the text column of the 1280 px page."""
    page.goto(f"{base_url}/{docname}.html", wait_until="networkidle")
    math = page.evaluate(MATH_STATE)
    if math["total"]:
        try:
            page.wait_for_function(f"({MATH_STATE})().typeset === {math['total']}", timeout=PAGE_TIMEOUT_MS)
        except Exception:  # noqa: BLE001 - test_page_renders reports typesetting failures
            pass
    wide = page.evaluate(OVERFLOWING)
    assert not wide, f"{docname}: {len(wide)} element(s) wider than the column:\n  " + "\n  ".join(
        f"{w['tag']} +{w['over']} px: {w['widest']!r}" for w in wide)
