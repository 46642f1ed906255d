"""Fixtures of the real-browser check: the built book served on localhost, and a headless chromium.

The whole directory is skipped unless ``--run-browser`` is given (``make test`` gives it right
after building the book). Chromium is Debian's ``/usr/bin/chromium`` driven by the ``playwright``
package; no browser is downloaded (``make install`` installs the Debian package when absent).
"""
from __future__ import annotations

import functools
import http.server
import os
import pathlib
import shutil
import threading
from typing import Iterator, List

import pytest
from book_pages import PAGE_TIMEOUT_MS, ROOT

SCREENSHOTS = ROOT / "_screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


def chromium_path() -> str:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and pathlib.Path(candidate).exists():
            return candidate
    raise pytest.UsageError("--run-browser: no chromium found (make install installs Debian's chromium; "
                            "or set CHROMIUM=/path/to/chromium)")


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    if config.getoption("--run-browser", default=False):
        return
    skip = pytest.mark.skip(reason="real-browser check: give --run-browser (make test does, after the build)")
    here = pathlib.Path(__file__).resolve().parent
    for item in items:
        if here in pathlib.Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def book_html(pytestconfig: pytest.Config) -> pathlib.Path:
    path = pathlib.Path(pytestconfig.getoption("--book-html")).resolve()
    if not (path / "index.html").exists():
        pytest.fail(f"--book-html: expected a built book (index.html) in {path}; run `make book` first")
    return path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


@pytest.fixture(scope="session")
def base_url(book_html: pathlib.Path) -> Iterator[str]:
    """The built book served by a threaded static server on a free localhost port."""
    handler = functools.partial(_QuietHandler, directory=str(book_html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="session")
def screenshots() -> pathlib.Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS
