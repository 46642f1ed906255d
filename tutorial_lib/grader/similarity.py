"""Code copied from the library, found by similarity: copydetect's winnowing fingerprints.

The student edition has no graded component, but the library's source is public (the book, the
repository): a student can paste it and edit it. :func:`similar_components` compares the
submission's code with the grader's source of each graded component: ``copydetect`` tokenises
both (names replaced, so renaming hides nothing), hashes every ``K``-token window and keeps the
winnowed fingerprints; the score is the share of the component's fingerprints found in the
submission. A score of at least :data:`FLAG` is reported to the instructor with its value, in the
row's notes and the feedback; it does not change the score (an honest solution to a small
exercise may look like the library's; the instructor reads it and decides).
"""

from __future__ import annotations

import inspect
import io
import pkgutil
from typing import Dict, Iterable

#: tokens per fingerprinted window (copydetect's noise threshold) and the winnowing window
K, WINDOW = 25, 1
#: the share of a component's fingerprints that gets a submission flagged
FLAG = 0.5
#: components with fewer fingerprints than this are not compared
MIN_FINGERPRINTS = 10


def _fingerprint(name: str, text: str):  # noqa: ANN202 - copydetect's CodeFingerprint
    import warnings

    from copydetect import CodeFingerprint

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CodeFingerprint(
            name, K, WINDOW, fp=io.StringIO(text), language="python"
        )


def similar_components(source: str, forbid: Iterable[str]) -> Dict[str, float]:
    """``component -> share of its fingerprints in source`` for the components at or above ``FLAG``."""
    from copydetect import compare_files

    found: Dict[str, float] = {}
    submission = None
    for path in forbid:
        try:
            reference = inspect.getsource(pkgutil.resolve_name(path))
        except (ImportError, AttributeError, TypeError, OSError):
            continue
        ref = _fingerprint(path, reference)
        # a few lines: two honest answers may well coincide
        if len(ref.hashes) < MIN_FINGERPRINTS:
            continue
        submission = submission or _fingerprint("submission.py", source)
        _, (share, _), _ = compare_files(ref, submission)
        if share >= FLAG:
            found[path] = round(float(share), 2)
    return found
