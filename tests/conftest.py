"""Shared test configuration: fixed seeds and small helpers."""
from __future__ import annotations

import pathlib

import pytest
import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def root() -> pathlib.Path:
    return ROOT
