"""axe-core in the built book: inject the pinned engine (``_vendor/axe``, fetched by
``tools/fetch_vendor.sh``) into a loaded page and return its WCAG 2.1 A/AA violations.

Shared by ``test_a11y.py`` and usable on its own to count violations per rule, e.g. before and
after a change (``python tests/browser/axe_check.py _build/html``): it prints, for each viewing
mode, the number of violating elements per rule and impact over every page of ``_toc.yml``.
"""
from __future__ import annotations

import collections
import json
import pathlib
import sys
from typing import Dict, List

from book_pages import ROOT, toc_pages

AXE_JS = ROOT / "_vendor" / "axe" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = {"serious", "critical"}

# (name, browser-context options): the desktop page in both colour modes and a phone. The theme
# follows the reader's system preference (html_fixes sets default_mode "auto").
MODES = {
    "light": {"viewport": {"width": 1280, "height": 900}, "color_scheme": "light"},
    "dark": {"viewport": {"width": 1280, "height": 900}, "color_scheme": "dark"},
    "phone": {"viewport": {"width": 390, "height": 844}, "color_scheme": "light", "is_mobile": True,
              "has_touch": True, "device_scale_factor": 2},
}

SETTLED = """async () => {
  const math = Array.from(document.querySelectorAll("span.math, div.math"));
  const widgets = document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]');
  for (let i = 0; i < 100; i++) {
    const typeset = math.every(el => el.querySelector("mjx-container"));
    const shown = Array.from(widgets).every(s => s.previousElementSibling &&
        s.previousElementSibling.querySelector(".jupyter-widgets, .widget-box, .lm-Widget"));
    if (typeset && shown) break;
    await new Promise(done => setTimeout(done, 200));
  }
  await new Promise(done => setTimeout(done, 300));
}"""

RUN = """async ([tags, skip]) => {
  const rules = Object.fromEntries(skip.map(id => [id, {enabled: false}]));
  const result = await axe.run(document, {runOnly: {type: "tag", values: tags}, rules: rules,
                                          resultTypes: ["violations"]});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map(n => ({target: n.target.join(" "), summary: n.failureSummary,
                                html: n.html.slice(0, 160)}))}));
}"""


# The phone shows the light page's colours in another layout: its colour contrast is the light
# mode's (checked there), and skipping it there halves the phone run, the slowest rule on the
# longest pages.
SKIP = {"phone": ["color-contrast"]}


def violations(page, url: str, mode: str = "") -> List[Dict]:
    """The axe violations of ``url`` once its math is typeset and its widgets are shown."""
    page.goto(url, wait_until="networkidle")
    page.evaluate(SETTLED)
    page.add_script_tag(path=str(AXE_JS))
    return page.evaluate(RUN, [TAGS, SKIP.get(mode, [])])


def count(results: List[Dict]) -> Dict[str, int]:
    """Violating elements per ``rule (impact)``."""
    counts: Dict[str, int] = collections.Counter()
    for v in results:
        counts[f"{v['id']} ({v['impact']})"] += len(v["nodes"])
    return dict(counts)


def main(html: str) -> None:
    import functools
    import http.server  # noqa: F401
    import threading

    from playwright.sync_api import sync_playwright

    from conftest import CHROMIUM_ARGS, _QuietHandler, chromium_path

    handler = functools.partial(_QuietHandler, directory=html)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    report = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        for mode, options in MODES.items():
            context = browser.new_context(**options)
            page = context.new_page()
            total: Dict[str, int] = collections.Counter()
            per_page = {}
            for docname in toc_pages():
                c = count(violations(page, f"{base}/{docname}.html", mode))
                per_page[docname] = c
                total.update(c)
            report[mode] = {"total": dict(sorted(total.items())), "pages": per_page}
            print(f"== {mode}: {sum(total.values())} violating elements", flush=True)
            for rule, n in sorted(total.items(), key=lambda kv: -kv[1]):
                print(f"  {n:5d}  {rule}", flush=True)
            context.close()
        browser.close()
    server.shutdown()
    if len(sys.argv) > 2:
        pathlib.Path(sys.argv[2]).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "_build" / "html"))
