"""Notebook conveniences: seeding, the standard setup, and source listings."""
from __future__ import annotations

import inspect
import logging
import os
import random
import textwrap
import warnings

import numpy as np
import torch

__all__ = ["seed_everything", "setup_notebook", "show_source", "SourceListing", "in_colab"]


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "COLAB_RELEASE_TAG" in os.environ or "google.colab" in __import__("sys").modules


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch so that a notebook gives the same numbers every run."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup_notebook(seed: int = 0) -> None:
    """The standard first call of every chapter.

    Seeds every generator, sets short print options for tensors and arrays, silences
    fvcore's per-op log lines (``profiling.count_macs`` decides explicitly what it counts),
    and sets matplotlib defaults that read well both in Jupyter and in the rendered book.
    """
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

        mpl.rcParams.update({
            "figure.dpi": 100, "savefig.dpi": 100, "figure.figsize": (7.0, 3.5),
            "axes.grid": False, "image.interpolation": "nearest", "font.size": 10,
        })
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        pass


class SourceListing:
    """The source code of an object, shown highlighted in Jupyter and as plain text elsewhere.

    The plain-text form is what nbval compares, so a library change that makes a chapter's
    listing stale fails the notebook tests.
    """

    def __init__(self, source: str, name: str) -> None:
        self.source = source
        self.name = name

    def __repr__(self) -> str:
        return self.source.rstrip("\n")

    def _repr_html_(self) -> str:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer

        formatter = HtmlFormatter(noclasses=True, style="default")
        return highlight(self.source, PythonLexer(), formatter)


def show_source(obj: object) -> SourceListing:
    """Return the highlighted source of a class, function or method from ``tutorial_lib``."""
    try:
        source = inspect.getsource(obj)
    except (TypeError, OSError) as err:
        raise ValueError(f"show_source: expected a class, function or method with Python source, "
                         f"got {obj!r} ({err})") from None
    return SourceListing(textwrap.dedent(source), getattr(obj, "__qualname__", repr(obj)))
