"""The basics checks pass a correct submission and fail each classic mistake with its hint."""
from __future__ import annotations

import re

import pytest
import torch

from tutorial_lib import checks, metrics
from tutorial_lib.checks import basics
from tutorial_lib.checks import REGISTRY, CheckFailed, run_check


# -- submissions ------------------------------------------------------------------------------
def good_mean_iou(pred, target, num_classes, ignore_index=255):
    keep = target != ignore_index
    p, t = pred[keep], target[keep]
    ious = []
    for k in range(num_classes):
        inter = ((p == k) & (t == k)).sum().item()
        union = ((p == k) | (t == k)).sum().item()
        if union:
            ious.append(inter / union)
    return sum(ious) / len(ious)


def no_ignore_mean_iou(pred, target, num_classes, ignore_index=255):
    ious = []
    for k in range(num_classes):
        inter = ((pred == k) & (target == k)).sum().item()
        union = ((pred == k) | (target == k)).sum().item()
        if union:
            ious.append(inter / union)
    return sum(ious) / len(ious)


def absent_as_zero_mean_iou(pred, target, num_classes, ignore_index=255):
    keep = target != ignore_index
    p, t = pred[keep], target[keep]
    ious = [((p == k) & (t == k)).sum().item() / max(((p == k) | (t == k)).sum().item(), 1)
            for k in range(num_classes)]
    return sum(ious) / num_classes


def per_image_mean_iou(pred, target, num_classes, ignore_index=255):
    if pred.ndim == 2:
        return good_mean_iou(pred, target, num_classes, ignore_index)
    return sum(good_mean_iou(p, t, num_classes, ignore_index) for p, t in zip(pred, target)) / len(pred)


def hard_coded_255_mean_iou(pred, target, num_classes, ignore_index=255):
    return good_mean_iou(pred, target, num_classes, 255)


def tensor_mean_iou(pred, target, num_classes, ignore_index=255):
    return torch.tensor(good_mean_iou(pred, target, num_classes, ignore_index))


def stub_mean_iou(pred, target, num_classes, ignore_index=255):
    raise NotImplementedError


def ellipsis_mean_iou(pred, target, num_classes, ignore_index=255):
    ...


def good_confusion(pred, target, num_classes, ignore_index=255):
    keep = target != ignore_index
    idx = target[keep] * num_classes + pred[keep]
    return torch.bincount(idx.reshape(-1), minlength=num_classes ** 2).reshape(num_classes, num_classes)


def float_confusion(pred, target, num_classes, ignore_index=255):
    return good_confusion(pred, target, num_classes, ignore_index).float()


def transposed_confusion(pred, target, num_classes, ignore_index=255):
    return good_confusion(pred, target, num_classes, ignore_index).T


def no_ignore_confusion(pred, target, num_classes, ignore_index=255):
    keep = target != ignore_index
    t = torch.where(keep, target, torch.zeros_like(target))
    return good_confusion(pred, t, num_classes, ignore_index=-12345)


def normalised_confusion(pred, target, num_classes, ignore_index=255):
    m = good_confusion(pred, target, num_classes, ignore_index).double()
    return m / m.sum(1, keepdim=True).clamp(min=1)


# -- tests ------------------------------------------------------------------------------------
def test_registered_and_exported() -> None:
    assert REGISTRY["mean_iou"].names == ("mean_iou",)
    assert REGISTRY["confusion_matrix"].names == ("confusion_matrix",)
    assert checks.check_mean_iou is REGISTRY["mean_iou"].func
    assert checks.check_confusion_matrix is REGISTRY["confusion_matrix"].func


@pytest.mark.parametrize("fn", [good_mean_iou, tensor_mean_iou])
def test_mean_iou_passes_correct(fn, capsys) -> None:
    checks.check_mean_iou(fn)
    assert "✓ mean IoU: all 7 checks passed" in capsys.readouterr().out


def test_mean_iou_passes_library_function() -> None:
    def lib(pred, target, num_classes, ignore_index=255):
        return metrics.mean_iou(metrics.confusion_matrix(pred, target, num_classes, ignore_index))
    assert run_check("mean_iou", lib, verbose=False) is None


@pytest.mark.parametrize("fn, hint", [
    (no_ignore_mean_iou, "drop every pixel whose target equals ignore_index"),
    (absent_as_zero_mean_iou, "leave it out of the mean"),
    (per_image_mean_iou, "behaves like averaging per-image mean IoUs"),
    (hard_coded_255_mean_iou, "use the ignore_index argument"),
    (stub_mean_iou, "not implemented yet"),
    (ellipsis_mean_iou, "expected a float, got NoneType"),
])
def test_mean_iou_fails_each_mistake_with_its_hint(fn, hint, capsys) -> None:
    with pytest.raises(AssertionError) as info:
        checks.check_mean_iou(fn)
    assert isinstance(info.value, CheckFailed)
    assert hint in str(info.value)
    assert hint in capsys.readouterr().out  # the feedback is printed for the student too


def test_mean_iou_does_not_leak_reference_through_mutation() -> None:
    def mutating(pred, target, num_classes, ignore_index=255):
        value = good_mean_iou(pred, target, num_classes, ignore_index)
        target.fill_(0)
        pred.fill_(0)
        return value
    assert run_check("mean_iou", mutating, verbose=False) is None


@pytest.mark.parametrize("fn, looks_like", [
    (per_image_mean_iou, "averaging per-image mean IoUs"),
    (no_ignore_mean_iou, "counting the pixels whose target is ignore_index"),
    (absent_as_zero_mean_iou, "giving a class absent from both prediction and target an IoU of 0"),
    (hard_coded_255_mean_iou, "ignoring the constant 255 instead of the ignore_index argument"),
])
def test_mean_iou_hints_name_the_diagnosed_mistake_only(fn, looks_like) -> None:
    """Every failed case carries the hint of the variant the submission behaves like, no other.

    The issue's example: a per-image-averaged mean IoU used to get "drop ignore_index pixels" (which
    it did) on one of its failing cases.
    """
    message = run_check("mean_iou", fn, verbose=False)
    problems = [line for line in message.splitlines() if line.startswith("  - ")]
    assert problems and all(f"behaves like {looks_like}" in line for line in problems), message
    others = [text for _, text, _ in basics._MEAN_IOU_MISTAKES if not text.startswith(looks_like)]
    assert not any(text in message for text in others)


def test_a_precondition_is_shown_but_earns_no_partial_credit() -> None:
    from tutorial_lib.checks import _core

    _core.LOG = []
    try:
        run_check("mean_iou", lambda p, t, k, ignore_index=255: 0.5, verbose=False)
        (checker,) = _core.LOG
    finally:
        _core.LOG = None
    assert (checker.passed, checker.credited, len(checker.failures), checker.credit) == (1, 0, 6, 0.0)



def test_the_failure_count_says_which_checks_earn_credit() -> None:
    """A precondition is labelled, so that "1 of 7 passed" is not read as 1/7 of the points."""
    message = run_check("mean_iou", lambda p, t, k, ignore_index=255: 0.5, verbose=False)
    assert message.splitlines()[0].endswith("0 of 6 graded checks passed (and 1 precondition(s))")


def test_mean_iou_unknown_mistake_gets_the_general_hint() -> None:
    message = run_check("mean_iou", lambda p, t, k, ignore_index=255: 0.5, verbose=False)
    assert "behaves like" not in message and basics._MEAN_IOU_HINT in message


def test_mean_iou_cases_discriminate() -> None:
    """Each mistake fails exactly the cases it should (the cases are not redundant)."""
    failures = {fn.__name__: run_check("mean_iou", fn, verbose=False)
                for fn in (no_ignore_mean_iou, absent_as_zero_mean_iou, per_image_mean_iou)}
    assert "1 problem(s)" in failures["absent_as_zero_mean_iou"]
    assert "num_classes=6" in failures["absent_as_zero_mean_iou"]
    assert "one large, nearly right image" in failures["per_image_mean_iou"]
    assert "ignore_index=255" in failures["no_ignore_mean_iou"]


@pytest.mark.parametrize("fn", [good_confusion, float_confusion])
def test_confusion_passes_correct(fn, capsys) -> None:
    checks.check_confusion_matrix(fn)
    assert "✓ confusion matrix" in capsys.readouterr().out


@pytest.mark.parametrize("fn, hint", [
    (transposed_confusion, "rows and columns are swapped"),
    (no_ignore_confusion, "skip pixels whose target equals ignore_index"),
    (normalised_confusion, "do not normalise"),
    (stub_mean_iou, "not implemented yet"),
    (ellipsis_mean_iou, "got NoneType"),
])
def test_confusion_fails_each_mistake(fn, hint) -> None:
    message = run_check("confusion_matrix", fn, verbose=False)
    assert message is not None and hint in message


def test_check_rejects_non_callable() -> None:
    with pytest.raises(AssertionError, match="expected a function, got int"):
        checks.check_mean_iou(3)


def test_error_is_reported_at_the_students_line() -> None:
    def calls_torch_wrongly(pred, target, num_classes, ignore_index=255):
        torch.nn.functional.interpolate(pred, scale_factor=2)  # raises inside torch's Python code
        return 0.0

    def crash_in_checker(fn):
        from tutorial_lib.checks import Checker
        with Checker("demo", verbose=False):
            fn(torch.zeros(2, 2), torch.zeros(2, 2), 2)

    with pytest.raises(CheckFailed, match=r"your code raised \w+Error: .* \(line \d+ of calls_torch_wrongly\)"):
        crash_in_checker(calls_torch_wrongly)


# -- numbers are printed at the precision they are compared ----------------------------------
@pytest.mark.parametrize("name, reference, off", [
    ("mean_iou", lambda p, t, k, ignore_index=255: float(metrics.mean_iou(
        metrics.confusion_matrix(p, t, k, ignore_index=ignore_index))), 1.01e-6),
    ("erf_radius", lambda e, f=0.9: float(__import__("tutorial_lib.erf").erf.erf_radius(e, f)), 1.01e-6),
])
@pytest.mark.parametrize("sign", [1, -1])
def test_a_number_just_beyond_the_tolerance_prints_differently(name, reference, off, sign) -> None:
    """An answer that fails by a hair never reads "expected 0.940285, got 0.940285"."""
    message = run_check(name, lambda *a, **k: reference(*a, **k) + sign * off, verbose=False)
    pairs = re.findall(r"expected (\S+), got (\S+)", message)
    assert pairs and all(want != got.rstrip(".") for want, got in pairs), pairs


def test_a_tensor_just_beyond_the_tolerance_shows_a_difference_above_it() -> None:
    from tutorial_lib.checks import Checker
    from tutorial_lib.checks._core import beyond

    want = torch.zeros(3)
    with pytest.raises(CheckFailed) as failed:
        with Checker("demo", verbose=False) as c:
            c.close(want + 1e-5 * (1 + 1e-6), want, "values", atol=1e-5, rtol=0)
    shown = re.search(r"max abs difference (\S+), tolerance (\S+)\)", str(failed.value))
    assert float(shown.group(1)) > float(shown.group(2)), shown.group(0)
    assert beyond(1.2e-5, 1e-5) == "1.2e-05" and beyond(float("nan"), 1e-5) == "nan"
