"""Shared test configuration: fixed seeds and small helpers."""
from __future__ import annotations

import pathlib

import pytest
import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    # Registered here (the root conftest is always loaded) so that `pytest tests` accepts them.
    group = parser.getgroup("browser", "real-browser check of the built book (tests/browser)")
    group.addoption("--run-browser", action="store_true", default=False,
                    help="run tests/browser against the built book (needs /usr/bin/chromium)")
    group.addoption("--book-html", default=str(ROOT / "_build" / "html"),
                    help="the built book's HTML folder (default: _build/html)")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def root() -> pathlib.Path:
    return ROOT
