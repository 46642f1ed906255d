"""The book for every reader (issue #23), in a real browser:

* axe-core (pinned, ``_vendor/axe``) finds no serious or critical WCAG 2.1 A/AA violation on any
  page, at 1280 px in light and dark mode and at 390 px on a phone;
* the sidebar and "On this page" toggles open their menus on a phone and collapse the sidebar
  on a desktop;
* every figure of a chapter has alt text that is not a file name, a caption and a number, and
  opens full size; formulas are not tab stops; header buttons show a focus ring; the static
  widgets say that they are static.

Run by ``make test`` after the book build (``pytest tests/browser --run-browser``).
"""
from __future__ import annotations

import re
from typing import Dict, Iterator

import pytest

from axe_check import AXE_JS, BLOCKING, MODES, SETTLED, violations
from book_pages import ROOT, toc_pages

PAGES = toc_pages()
CHAPTERS = [p for p in PAGES if (ROOT / f"{p}.ipynb").exists() and re.match(r"\d+_", p.rsplit("/", 1)[-1])]
PHONE_PAGE = "book/segformer/10_mix_ffn"


@pytest.fixture(scope="module")
def mode_pages(browser) -> Iterator[Dict[str, object]]:
    """One page per viewing mode, reused across the pages of the book (a fresh context per
    mode keeps the colour scheme and the viewport)."""
    contexts, pages = [], {}
    for mode, options in MODES.items():
        context = browser.new_context(**options)
        page = context.new_page()
        page.set_default_timeout(90_000)  # a loaded machine: axe on the API page takes its time
        contexts.append(context)
        pages[mode] = page
    try:
        yield pages
    finally:
        for context in contexts:
            context.close()


@pytest.mark.parametrize("docname", PAGES)
@pytest.mark.parametrize("mode", list(MODES))
def test_no_serious_accessibility_violations(mode_pages, base_url: str, mode: str, docname: str) -> None:
    if not AXE_JS.exists():
        pytest.fail(f"{AXE_JS} is missing: run `make vendor` (tools/fetch_vendor.sh) to fetch axe-core")
    found = [v for v in violations(mode_pages[mode], f"{base_url}/{docname}.html", mode) if v["impact"] in BLOCKING]
    lines = []
    for v in found:
        lines.append(f"{v['id']} ({v['impact']}, {len(v['nodes'])} element(s)): {v['help']}")
        lines += [f"    {n['target']}: {n['summary'].splitlines()[-1].strip()}" for n in v["nodes"][:3]]
    assert not found, f"{docname} ({mode}): axe-core reports\n  " + "\n  ".join(lines)


def _phone(browser):
    context = browser.new_context(**MODES["phone"])
    page = context.new_page()
    page.set_default_timeout(30_000)
    return context, page


VISIBLE = "(el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length)"


def _visible_toggle(page, selector: str):
    for handle in page.query_selector_all(selector):
        if page.evaluate(VISIBLE, handle):
            return handle
    raise AssertionError(f"no visible {selector} on the page")


@pytest.mark.parametrize("which, dialog", [("primary", "#pst-primary-sidebar-modal"),
                                           ("secondary", "#pst-secondary-sidebar-modal")])
def test_menus_open_on_a_phone(browser, base_url: str, which: str, dialog: str) -> None:
    """At 390 px, tapping the visible hamburger (chapters) or "On this page" opens its menu."""
    context, page = _phone(browser)
    try:
        page.goto(f"{base_url}/{PHONE_PAGE}.html", wait_until="networkidle")
        _visible_toggle(page, f".{which}-toggle").tap()
        page.wait_for_function(f"() => document.querySelector('{dialog}').open", timeout=5_000)
        links = page.eval_on_selector_all(f"{dialog} a", "els => els.filter(e => e.offsetParent).length")
        assert links > 0, f"the {which} menu opened empty"
        page.keyboard.press("Escape")
        page.wait_for_function(f"() => !document.querySelector('{dialog}').open", timeout=5_000)
    finally:
        context.close()


def test_hamburger_collapses_the_sidebar_on_a_desktop(page, base_url: str) -> None:
    page.goto(f"{base_url}/{PHONE_PAGE}.html", wait_until="networkidle")
    sidebar = "#pst-primary-sidebar"
    assert page.is_visible(sidebar)
    _visible_toggle(page, ".primary-toggle").click()
    page.wait_for_function(f"() => document.querySelector('{sidebar}').classList.contains('pst-sidebar-hidden')",
                           timeout=5_000)


FIGURES = """() => {
  const out = [];
  document.querySelectorAll("main article img").forEach(img => {
    if (img.closest(".jupyter-widgets, .widget-subarea")) return;
    const alt = (img.getAttribute("alt") || "").trim();
    const figure = img.closest("figure");
    const caption = figure && figure.querySelector("figcaption");
    const number = caption && caption.querySelector(".caption-number");
    const link = img.closest("a");
    out.push({src: img.getAttribute("src"), alt: alt,
              caption: caption ? caption.textContent.trim() : "",
              number: number ? number.textContent.trim() : "",
              full: !!(link && link.getAttribute("href") === img.getAttribute("src")),
              id: figure ? figure.id : ""});
  });
  document.querySelectorAll("main article .widget-subarea img").forEach(img =>
    out.push({src: "(widget)", alt: (img.getAttribute("alt") || "").trim(), caption: "-", number: "-",
              full: true, id: "widget"}));
  return out;
}"""

# A file name or a content hash is not alt text.
NOT_ALT = re.compile(r"(\.(png|jpe?g|svg)$)|(^[0-9a-f]{16,})|(^_images/)|(^$)")


@pytest.mark.parametrize("docname", CHAPTERS)
def test_figures_have_alt_text_caption_and_number(page, base_url: str, docname: str) -> None:
    page.goto(f"{base_url}/{docname}.html", wait_until="networkidle")
    page.evaluate(SETTLED)
    figures = page.evaluate(FIGURES)
    chapter = int(docname.rsplit("/", 1)[-1].split("_")[0])
    bad = {"alt text": [f["src"] for f in figures if NOT_ALT.search(f["alt"])],
           "caption": [f["src"] for f in figures if not f["caption"]],
           "number": [f["src"] for f in figures if f["number"] != "-" and
                      not re.fullmatch(rf"Figure {chapter}\.\d+", f["number"])],
           "full-size link": [f["src"] for f in figures if not f["full"]],
           "name (fig-...)": [f["src"] for f in figures if f["id"] != "widget" and not f["id"].startswith("fig-")]}
    assert figures, f"{docname}: no figures found"
    assert not any(bad.values()), f"{docname}: figures without " + "; ".join(
        f"{what}: {len(srcs)} ({srcs[:3]})" for what, srcs in bad.items() if srcs)


def test_formulas_are_not_tab_stops_and_buttons_show_focus(page, base_url: str) -> None:
    page.goto(f"{base_url}/book/appendix/api.html", wait_until="networkidle")
    page.evaluate(SETTLED)
    stops = page.evaluate("() => document.querySelectorAll('mjx-container[tabindex]:not([tabindex=\"-1\"])').length")
    assert stops == 0, f"{stops} formulas are tab stops (MathJax inTabOrder)"
    page.goto(f"{base_url}/{PHONE_PAGE}.html", wait_until="networkidle")
    unringed = []
    for _ in range(40):
        page.keyboard.press("Tab")
        info = page.evaluate("""() => { const el = document.activeElement;
            if (!el || !el.closest('.bd-header-article, .bd-header')) return null;
            const s = getComputedStyle(el);
            return {what: (el.className || el.tagName).toString().slice(0, 60),
                    ring: (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none'}; }""")
        if info and not info["ring"]:
            unringed.append(info["what"])
    assert not unringed, f"header controls without a focus ring: {sorted(set(unringed))}"


def test_static_widgets_say_so(page, base_url: str) -> None:
    page.goto(f"{base_url}/book/deeplab/02_atrous_convolution.html", wait_until="networkidle")
    page.evaluate(SETTLED)
    state = page.evaluate("""() => {
      const areas = Array.from(document.querySelectorAll('.widget-subarea'));
      return areas.map(a => ({note: !!a.querySelector('.tl-static-note'),
        enabled: Array.from(a.querySelectorAll('input, select, button')).filter(c => !c.disabled).length}));
    }""")
    assert state, "no widget rendered"
    assert all(s["note"] and s["enabled"] == 0 for s in state), state
