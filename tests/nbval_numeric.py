"""nbval with numbers compared at the precision their claim needs (a pytest plugin).

nbval compares a chapter's stored outputs with a fresh run *as text*. Floating-point results are
not text: another CPU (AVX-512 instead of AVX2, no SIMD at all), another oneDNN kernel or another
thread count sums in another order, and a glued float moves in its 8th digit or a trained model's
mIoU in its 4th. This plugin keeps nbval's execution, sanitising and reporting and replaces only
the comparison of two output strings:

* The text is split into numbers and the text between them. The text between them must be equal
  (runs of spaces and tabs count as one space, so a column that widens by a digit still matches;
  line breaks count).
* **Integers** (no decimal point, no exponent: shapes, parameter and MAC counts, step counts,
  anything counted) must be equal, digit for digit.
* **Floats** match when ``|a - b| <= atol + rtol * max(|a|, |b|) + unit``. ``unit`` is one unit in
  the last printed digit of the finer of the two (``0.2343`` → 1e-4), so a value printed at 3
  decimals is compared at 3 decimals whichever way it rounded — but only for numbers printed with
  at least two significant digits (unit <= 10 % of the value): a one-digit number (``0.1``,
  ``1e-06``, ``3.``) is a constant or a label, and one unit would be a real change.
  ``rtol``/``atol`` come from the cell's *kind*, a cell tag (table ``KINDS``); untagged cells are
  ``default``.
* **Source listings** (``show_source``: a ``text/plain`` with a pygments-highlighted ``text/html``
  twin) are compared exactly, through their ``text/plain`` (the HTML depends on the installed
  pygments). Any other ``text/html`` is compared exactly; everything else nbval compares is
  compared.

Cells tagged ``needs-<module>`` (e.g. ``needs-transformers``) run everywhere, but their outputs are
compared only where that optional module is installed: ``--nbval-without transformers`` says it is
not (the Colab-like check, whose environment has only what the package itself installs).

Use: ``python -m pytest -p tests.nbval_numeric --nbval ...`` from the repository root (as the Makefile
and ``tools/colab_check.py`` do).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

#: name -> (rtol, atol). A cell opts into a kind with the tag ``nbval-<name>``.
KINDS: Dict[str, Tuple[float, float]] = {
    # Deterministic float computations (forward and backward passes, metrics of fixed inputs,
    # analytic formulas): kernels and thread counts move float32 results by 1e-7..1e-6 relative in
    # one layer and up to ~5e-4 through a deep network or a linear solve (measured: effective
    # receptive fields of the shipped models 2e-4, a ridge probe 7e-4); 1e-3 still fails any change
    # of a formula, a weight or a data set.
    "default": (1e-3, 0.0),
    # Aggregate results of training (losses, mIoU, pixel accuracy, anything computed from a whole
    # trained model): tiny per-step differences grow over hundreds of optimiser steps. Measured across
    # AVX2 vs. no-SIMD kernels and 1 vs. 2 threads: up to 6 % (an intermediate epoch's mIoU, 0.221
    # vs 0.208), final metrics up to 5 %. A 10 % change of a value above 0.13 still fails
    # (tests/test_nbval_numeric.py).
    "training": (0.05, 0.005),
    # The score of one class (its IoU) from a model trained for seconds: a class the model has
    # barely learnt sits near a decision boundary, and another CPU's rounding moves it across.
    # Measured up to 0.046 (chapter 05, DeepLabV3+ small, "box": 0.223 vs 0.177 with no SIMD).
    # Aggregates of the same model (mIoU, accuracy, loss) belong in a `training` cell.
    "per-class": (0.0, 0.06),
    # Floating-point noise itself (the max |difference| between two implementations of one
    # function): the claim is "equal up to rounding", so any value below atol matches any other.
    "noise": (0.0, 1e-4),
}

_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?(?![\w])"
                     r"|(?<![\w.])[-+]?(?:nan|inf)(?![\w])")
_SPACE = re.compile(r"[ \t]+")


@dataclass(frozen=True)
class Number:
    text: str

    @property
    def is_float(self) -> bool:
        t = self.text.lower()
        return "." in t or "e" in t or "nan" in t or "inf" in t

    @property
    def value(self) -> float:
        return float(self.text)

    @property
    def unit(self) -> float:
        """One unit in the last printed digit (0.2343 → 1e-4, 2.03e-06 → 1e-08, 62.4 → 0.1)."""
        t = self.text.lower().lstrip("+-")
        if "nan" in t or "inf" in t:
            return 0.0
        mantissa, _, exponent = t.partition("e")
        decimals = len(mantissa.partition(".")[2])
        return 10.0 ** (int(exponent or 0) - decimals)


def split(text: str) -> Tuple[List[str], List[Number]]:
    """Text between numbers (white space runs collapsed) and the numbers, in order."""
    parts, numbers, last = [], [], 0
    for match in _NUMBER.finditer(text):
        parts.append(text[last:match.start()])
        numbers.append(Number(match.group()))
        last = match.end()
    parts.append(text[last:])
    return [_SPACE.sub(" ", p) for p in parts], numbers


def numbers_match(ref: Number, test: Number, rtol: float, atol: float) -> bool:
    if ref.is_float != test.is_float:
        return False
    if not ref.is_float:
        return ref.text.lstrip("+") == test.text.lstrip("+")
    a, b = ref.value, test.value
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    scale = max(abs(a), abs(b))
    unit = min(ref.unit, test.unit)
    rounding = unit if unit <= 0.1 * scale else 0.0  # two or more significant digits printed
    return abs(a - b) <= atol + rtol * scale + rounding


def compare_text(ref: str, test: str, rtol: float, atol: float) -> Optional[str]:
    """``None`` when ``test`` matches ``ref`` under the tolerances, else a one-line reason."""
    if ref == test:
        return None
    ref_parts, ref_numbers = split(ref)
    test_parts, test_numbers = split(test)
    if ref_parts != test_parts:
        for r, t in zip(ref_parts, test_parts):
            if r != t:
                return f"text differs: {r.strip()[:60]!r} != {t.strip()[:60]!r}"
        return "text differs (different number of numbers)"
    for r, t in zip(ref_numbers, test_numbers):
        if not numbers_match(r, t, rtol, atol):
            kind = "float" if r.is_float else "integer"
            return (f"{kind} {r.text} != {t.text} (rtol={rtol:g}, atol={atol:g}, "
                    f"printed unit={max(r.unit, t.unit) if r.is_float else 0:g})")
    return None


def tolerance_for(tags: Iterable[str]) -> Tuple[str, float, float]:
    kinds = [t[len("nbval-"):] for t in tags if t.startswith("nbval-") and t[len("nbval-"):] in KINDS]
    if len(kinds) > 1:
        raise ValueError(f"a cell may have one comparison kind, got tags {kinds}")
    kind = kinds[0] if kinds else "default"
    return (kind, *KINDS[kind])


# ----------------------------------------------------------------------------------------------
# The pytest plugin: nbval's IPyNbCell.compare_outputs, with compare_text for each value.
# ----------------------------------------------------------------------------------------------

def _is_listing(data: dict) -> bool:
    html = _as_text(data.get("text/html", ""))
    return "text/plain" in data and 'class="highlight"' in html


def _flatten(outputs: Sequence[dict], skip: Sequence[str], sanitize) -> Dict[str, List[Tuple[str, bool]]]:
    """nbval's flattening (MIME type -> values, in order), each value with "compare exactly"."""
    flat: Dict[str, List[Tuple[str, bool]]] = {}
    for output in outputs:
        data = output.get("data", {})
        listing = _is_listing(data)
        for key, value in output.items():
            if key in skip:
                continue
            if key == "data":
                for mime, payload in value.items():
                    if mime in skip or (mime == "text/html" and listing):
                        continue
                    exact = listing or mime == "text/html"
                    flat.setdefault(mime, []).append((sanitize(_as_text(payload)), exact))
            else:
                flat.setdefault(key, []).append((sanitize(_as_text(value)), False))
    return flat


def _as_text(value: object) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def compare_outputs(self, test, ref, skip_compare=None) -> bool:  # replaces IPyNbCell.compare_outputs
    from nbval.plugin import transform_streams_for_comparison

    skip = skip_compare or self.parent.skip_compare
    tags = self.cell.metadata.get("tags", [])
    self.comparison_traceback = []
    missing = set(self.config.getoption("nbval_without") or [])
    if any(t.startswith("needs-") and t[len("needs-"):] in missing for t in tags):
        return True  # runs (an exception would still fail), but its output needs the missing module
    kind, rtol, atol = tolerance_for(tags)
    test_flat = _flatten(transform_streams_for_comparison(test), skip, self.sanitize)
    ref_flat = _flatten(transform_streams_for_comparison(ref), skip, self.sanitize)
    if set(test_flat) != set(ref_flat):
        self.comparison_traceback.append(
            f"output fields differ: stored {sorted(ref_flat)}, computed {sorted(test_flat)}")
        return False
    for key, ref_values in ref_flat.items():
        test_values = test_flat[key]
        if len(ref_values) != len(test_values):
            self.comparison_traceback.append(
                f"{key}: {len(ref_values)} stored outputs, {len(test_values)} computed")
            return False
        for (r, exact), (t, _) in zip(ref_values, test_values):
            reason = ("text differs (compared exactly)" if r != t else None) if exact else compare_text(r, t, rtol, atol)
            if reason is not None:
                self.comparison_traceback.append(f"{key} (comparison kind {kind!r}): {reason}")
                self.format_output_compare(key, r, t)
                return False
    return True


def pytest_addoption(parser) -> None:
    group = parser.getgroup("nbval_numeric", "nbval: numbers compared with tolerances (tests/nbval_numeric.py)")
    group.addoption("--nbval-without", action="append", default=[], metavar="MODULE",
                    help="an optional module the kernel lacks: outputs of cells tagged needs-MODULE "
                         "are not compared (the cells still run)")


def pytest_configure(config) -> None:
    from nbval import plugin

    plugin.IPyNbCell.compare_outputs = compare_outputs
