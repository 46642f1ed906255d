"""Checks for Part 1 (basics): the confusion matrix and mean IoU.

The student's functions are compared with :mod:`tutorial_lib.metrics` on seeded cases chosen
so that each classic mistake fails a case of its own, with a hint naming it:

* counting pixels whose target is ``ignore_index`` (they must vanish from prediction *and* target);
* giving an absent class (in neither prediction nor target) an IoU of 0 or 1 instead of leaving it
  out of the mean;
* averaging IoU per image instead of accumulating intersections and unions over the whole batch;
* swapping rows and columns of the confusion matrix (rows are true classes).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator, List, NamedTuple

import torch

from .. import metrics
from . import _core
from ._core import Checker, register

__all__ = ["check_mean_iou", "check_confusion_matrix"]


class _Case(NamedTuple):
    """One seeded input: what it exercises, the tensors, and the hint shown if it fails."""

    what: str
    pred: torch.Tensor
    target: torch.Tensor
    num_classes: int
    ignore_index: int
    hint: str


def _labels(gen: torch.Generator, shape: tuple, num_classes: int) -> torch.Tensor:
    return torch.randint(0, num_classes, shape, generator=gen)


def _noisy_copy(
    gen: torch.Generator, target: torch.Tensor, num_classes: int, flip: float
) -> torch.Tensor:
    """A prediction that agrees with ``target`` except on a random ``flip`` fraction of pixels."""
    noise = _labels(gen, tuple(target.shape), num_classes)
    wrong = torch.rand(target.shape, generator=gen) < flip
    return torch.where(wrong, noise, target.clamp(0, num_classes - 1))


def _cases() -> Iterator[_Case]:
    """The seeded cases shared by both checks (regenerated on each call: checks never share state)."""
    gen = _core.generator(7)

    target = _labels(gen, (2, 16, 16), 4)
    yield _Case(
        "a (2, 16, 16) batch with 4 classes",
        _noisy_copy(gen, target, 4, 0.3),
        target,
        4,
        255,
        "IoU of class c is TP / (TP + FP + FN); mean IoU averages it over classes",
    )

    target = _labels(gen, (3, 12, 20), 5)
    pred = _noisy_copy(gen, target, 5, 0.4)
    ignored = torch.rand(target.shape, generator=gen) < 0.25
    target = torch.where(ignored, torch.full_like(target, 255), target)
    yield _Case(
        "a batch where a quarter of the targets are ignore_index=255",
        pred,
        target,
        5,
        255,
        "drop every pixel whose target equals ignore_index before counting, from the "
        "prediction as well as from the target",
    )

    target = _labels(gen, (1, 24, 24), 3)  # classes 3, 4, 5 of 6 appear nowhere
    yield _Case(
        "num_classes=6 but only classes 0-2 occur anywhere",
        _noisy_copy(gen, target, 3, 0.3),
        target,
        6,
        255,
        "a class absent from both prediction and target has no IoU (0/0): leave it out of "
        "the mean instead of counting it as 0 or 1",
    )

    target = _labels(gen, (2, 10, 10), 3)
    pred = _noisy_copy(gen, target, 3, 0.2)
    pred[0, :2, :3] = (
        3  # class 3 is predicted a few times but never occurs in the target
    )
    target[1, -3:, -3:] = 4  # class 4 occurs in the target but is never predicted
    pred[1, -3:, -3:] = 0
    yield _Case(
        "class 3 only predicted, class 4 only in the target",
        pred,
        target,
        5,
        255,
        "a class that occurs in only one of prediction and target has IoU 0 and does count "
        "in the mean",
    )

    # Image 0 is large and almost right, image 1 is tiny and mostly wrong: averaging per image
    # gives a very different number from accumulating over the batch (the dataset convention).
    target = torch.zeros(2, 16, 16, dtype=torch.long)
    target[:, :, 8:] = 1
    pred = target.clone()
    pred[0, :2, :2] = 1
    target[1] = 255
    target[1, :2, :2] = torch.tensor([[0, 1], [1, 0]])
    pred[1, :2, :2] = torch.tensor([[1, 0], [0, 1]])
    yield _Case(
        "a batch of one large, nearly right image and one tiny, wrong one",
        pred,
        target,
        2,
        255,
        "accumulate TP, FP and FN over every image of the batch before dividing; do not "
        "average per-image IoUs",
    )

    # a single map without a batch dimension, ignore_index=-1
    target = _labels(gen, (8, 8), 3)
    pred = _noisy_copy(gen, target, 3, 0.3)
    target[:2] = -1
    yield _Case(
        "an (8, 8) map with ignore_index=-1",
        pred,
        target,
        3,
        -1,
        "use the ignore_index argument rather than the constant 255, and accept label maps "
        "of any shape",
    )


def _to_float(value: Any) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise TypeError(
                f"expected a single number, got a tensor of shape {tuple(value.shape)}"
            )
        return float(value.item())
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a float, got {type(value).__name__}")
    return float(value)


def _call(fn: Callable, case: _Case) -> Any:
    # Clones, so that a submission which edits its inputs in place cannot corrupt the reference.
    return fn(
        case.pred.clone(),
        case.target.clone(),
        case.num_classes,
        ignore_index=case.ignore_index,
    )


def _iou_terms(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, keep: torch.Tensor
):
    """Per-class intersection and union over the pixels in ``keep``."""
    inter = torch.stack(
        [((pred == c) & (target == c) & keep).sum() for c in range(num_classes)]
    ).double()
    union = torch.stack(
        [(((pred == c) | (target == c)) & keep).sum() for c in range(num_classes)]
    ).double()
    return inter, union


def _variant(case: _Case, mistake: str) -> float:
    """What ``mean_iou`` returns on ``case`` when it makes ``mistake`` (a known wrong variant)."""
    pred, target, k, ignore = (
        case.pred,
        case.target,
        case.num_classes,
        case.ignore_index,
    )
    if mistake == "per_image" and target.dim() >= 3 and target.shape[0] > 1:
        return sum(
            _variant(case._replace(pred=p, target=t), "none")
            for p, t in zip(pred, target)
        ) / len(target)
    if mistake == "ignore_255":
        ignore = 255
    keep = (
        torch.ones_like(target, dtype=torch.bool)
        if mistake == "keeps_ignored"
        else target != ignore
    )
    inter, union = _iou_terms(pred, target, k, keep)
    if mistake == "absent_zero":
        return float(
            torch.where(
                union > 0, inter / union.clamp(min=1), torch.zeros_like(union)
            ).mean()
        )
    if mistake == "absent_one":
        return float(
            torch.where(
                union > 0, inter / union.clamp(min=1), torch.ones_like(union)
            ).mean()
        )
    present = union > 0
    if mistake == "target_classes_only":
        present = torch.stack([((target == c) & keep).any() for c in range(k)])
    return (
        float((inter[present] / union[present]).mean())
        if present.any()
        else float("nan")
    )


#: known wrong variants of mean IoU: (name, what the submission behaves like, how to fix it)
_MEAN_IOU_MISTAKES = [
    (
        "per_image",
        "averaging per-image mean IoUs",
        "accumulate TP, FP and FN over every image of the batch before dividing (the dataset convention)",
    ),
    (
        "keeps_ignored",
        "counting the pixels whose target is ignore_index (as false positives)",
        "drop every pixel whose target equals ignore_index, from the prediction as well as from the target",
    ),
    (
        "ignore_255",
        "ignoring the constant 255 instead of the ignore_index argument",
        "use the ignore_index argument",
    ),
    (
        "absent_zero",
        "giving a class absent from both prediction and target an IoU of 0",
        "a class with no pixel in prediction or target has no IoU (0/0): leave it out of the mean",
    ),
    (
        "absent_one",
        "giving a class absent from both prediction and target an IoU of 1",
        "a class with no pixel in prediction or target has no IoU (0/0): leave it out of the mean",
    ),
    (
        "target_classes_only",
        "averaging only over the classes that occur in the target",
        "a class that is predicted but never occurs in the target has IoU 0 and counts in the mean",
    ),
]
_MEAN_IOU_HINT = (
    "your values match no known slip and fail every case: compare one class's TP, FP and FN "
    "with the confusion matrix of chapter 01, section 'Mean IoU, by hand'"
)


@register(
    "mean_iou",
    forbid=[
        "tutorial_lib.metrics.mean_iou",
        "tutorial_lib.metrics.iou_per_class",
        "tutorial_lib.metrics.confusion_matrix",
    ],
    names=["mean_iou"],
    description="mean_iou(pred, target, num_classes, ignore_index=255) -> float",
)
def check_mean_iou(fn: Callable[..., Any]) -> None:
    """Check a student's ``mean_iou(pred, target, num_classes, ignore_index=255) -> float``.

    ``pred`` and ``target`` are integer label maps of the same shape; the result must equal
    ``tutorial_lib.metrics.mean_iou`` of the confusion matrix (to 1e-6) on six seeded cases:
    a plain batch, ignored pixels, classes absent everywhere, classes present on one side only,
    batch accumulation versus per-image averaging, and a custom ``ignore_index`` on a 2-D map.
    When the answers match a known wrong variant on every case (per-image averaging, counting
    ignored pixels, an absent class as 0 or 1, ...) the feedback names that mistake.
    Raises ``AssertionError`` (``CheckFailed``) listing every failed case.
    """
    with Checker("mean IoU") as c:
        if not c.true(
            callable(fn),
            f"expected a function, got {type(fn).__name__}",
            credit=False,
        ):
            return
        results = []  # (case, reference, the student's float or None, problem or None)
        for case in _cases():
            want = metrics.mean_iou(
                metrics.confusion_matrix(
                    case.pred,
                    case.target,
                    case.num_classes,
                    ignore_index=case.ignore_index,
                )
            )
            try:
                results.append((case, want, _to_float(_call(fn, case)), None))
            except TypeError as err:
                results.append(
                    (
                        case,
                        want,
                        None,
                        f"{err}. Hint: return float(...) of the mean",
                    )
                )
            # the student's code crashed on this case: report and go on
            except Exception as err:
                if c.stub(err, "mean_iou"):
                    return
                results.append((case, want, None, _core.student_raised(err)))
        wrong = [
            r
            for r in results
            if r[2] is None
            or not (math.isfinite(r[2]) and abs(r[2] - r[1]) <= 1e-6)
        ]
        hint = _MEAN_IOU_HINT
        answered = [r for r in results if r[2] is not None]
        for name, looks_like, fix in _MEAN_IOU_MISTAKES:
            values = [_variant(case, name) for case, _, _, _ in answered]
            if (
                wrong
                and answered
                and all(
                    math.isfinite(v) and abs(v - got) <= 1e-6
                    for v, (_, _, got, _) in zip(values, answered)
                )
            ):
                hint = f"your mean_iou behaves like {looks_like}; {fix}"
                break
        if hint == _MEAN_IOU_HINT and wrong and len(wrong) < len(results):
            hint = (
                "no single known slip explains your answers; they go wrong only on "
                + "; ".join(r[0].what for r in wrong)
                + " — what do these cases have that the others lack? (chapter 01, section 'Mean IoU, by hand')"
            )
        for case, want, got, problem in results:
            if problem is not None:
                c.true(False, f"{case.what}: {problem}")
            else:
                ok = math.isfinite(got) and abs(got - want) <= 1e-6
                c.true(ok, f"{case.what}: expected {want:.6f}, got {got:.6f}", hint)


def _matrix_problem(got: torch.Tensor, want: torch.Tensor) -> List[str]:
    """Explain how ``got`` differs from ``want`` (two (K, K) integer matrices)."""
    if torch.equal(got, want.T):
        return [
            "rows and columns are swapped",
            "row i is the true class i, column j the predicted class j",
        ]
    if got.sum() > want.sum():
        return [
            f"it counts {int(got.sum())} pixels but only {int(want.sum())} are not ignored",
            "skip pixels whose target equals ignore_index",
        ]
    worst = (got - want).abs().argmax()
    i, j = divmod(int(worst), want.shape[1])
    return [
        f"entry [{i}, {j}] (true class {i}, predicted {j}) is {int(got[i, j])} instead of {int(want[i, j])}",
        "count, for every non-ignored pixel, its (true, predicted) pair",
    ]


@register(
    "confusion_matrix",
    forbid=["tutorial_lib.metrics.confusion_matrix"],
    names=["confusion_matrix"],
    description="confusion_matrix(pred, target, num_classes, ignore_index=255) -> (K, K) counts",
)
def check_confusion_matrix(fn: Callable[..., Any]) -> None:
    """Check a student's ``confusion_matrix(pred, target, num_classes, ignore_index=255)``.

    The result must be a ``(num_classes, num_classes)`` tensor of integer counts (any integer or
    whole-valued float dtype) with row = true class and column = predicted class, equal to
    ``tutorial_lib.metrics.confusion_matrix`` on the same six seeded cases as
    :func:`check_mean_iou`. Raises ``AssertionError`` (``CheckFailed``) on failure.
    """
    with Checker("confusion matrix") as c:
        if not callable(fn):
            c.true(False, f"expected a function, got {type(fn).__name__}")
            return
        for case in _cases():
            want = metrics.confusion_matrix(
                case.pred,
                case.target,
                case.num_classes,
                ignore_index=case.ignore_index,
            )
            try:
                got = _call(fn, case)
            except Exception as err:
                if c.stub(err, "confusion_matrix"):
                    break
                c.true(
                    False, f"{case.what}: {_core.student_raised(err)}", case.hint
                )
                continue
            if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(
                want.shape
            ):
                c.shape(
                    got,
                    tuple(want.shape),
                    f"{case.what}: the matrix",
                    "one row and one column per class, (num_classes, num_classes)",
                )
                continue
            got = got.detach()
            if got.is_floating_point() and not torch.equal(got, got.round()):
                c.true(
                    False,
                    f"{case.what}: expected whole-number counts, got fractional values",
                    "count pixels; do not normalise the matrix",
                )
                continue
            got = got.round().long() if got.is_floating_point() else got.long()
            if torch.equal(got, want):
                c.true(True, "")
            else:
                what, hint = _matrix_problem(got, want)
                c.true(False, f"{case.what}: {what}", hint)


# -- predict-then-measure (chapter 01) ------------------------------------------------------------

__all__ += ["measure_background_baseline", "check_predict_background_baseline"]


def measure_background_baseline(
    num_scenes: int = 16, size: int = 64, seed: int = 1
) -> dict:
    """Score the prediction "background everywhere" on ``num_scenes`` library scenes
    (``data.SyntheticScenes``): ``{"background_share", "classes_present", "pixel_accuracy", "mean_iou"}``,
    with the library's own metrics."""
    from .. import data

    scenes = data.SyntheticScenes(num_scenes, size=size, seed=seed)
    target = torch.stack([scenes[i][1] for i in range(num_scenes)])
    pred = torch.zeros_like(target)
    matrix = metrics.confusion_matrix(
        pred, target, data.NUM_CLASSES, ignore_index=data.IGNORE_INDEX
    )
    keep = target != data.IGNORE_INDEX
    return {
        "background_share": float((target[keep] == 0).double().mean()),
        "classes_present": int(len(torch.unique(target[keep]))),
        "pixel_accuracy": float((pred[keep] == target[keep]).double().mean()),
        "mean_iou": float(metrics.mean_iou(matrix)),
    }


def check_predict_background_baseline(prediction: Any, measured: Any) -> None:
    """Predict-then-measure (chapter 01): knowing only the background share ``b`` and the number of
    classes present ``K`` (printed first), predict the pixel accuracy and the mean IoU of predicting
    background everywhere.

    ``prediction = {"pixel_accuracy": float, "mean_iou": float}``; ``measured`` is
    ``measure_background_baseline()``. Expected reasoning: accuracy = b; background's IoU is b (every
    pixel is predicted background) and every other present class has IoU 0, so mean IoU = b / K.
    Compared to 0.01.
    """
    with Checker("prediction: the all-background baseline") as c:
        if not isinstance(prediction, dict) or any(
            _core.unanswered(prediction.get(k))
            for k in ("pixel_accuracy", "mean_iou")
        ):
            c.true(
                False,
                "not implemented yet: fill in both predictions before measuring",
            )
            return
        if not (isinstance(measured, dict) and "mean_iou" in measured):
            c.true(
                False,
                "expected the dict of checks.measure_background_baseline(); rerun that cell",
                credit=False,
            )
            return
        b, k = measured["background_share"], measured["classes_present"]
        acc, miou = prediction["pixel_accuracy"], prediction["mean_iou"]
        c.true(
            _core.close_enough(acc, measured["pixel_accuracy"], 0.02),
            f"pixel accuracy: you predicted {acc!r}, measured {measured['pixel_accuracy']:.3f}",
            "every background pixel is right and every other pixel wrong",
        )
        hint = (
            "mean IoU averages one IoU per class present: what is background's IoU when every pixel is "
            "predicted background, and what is the IoU of a class never predicted? (chapter 01, section "
            "'Mean IoU, by hand')"
        )
        if _core.close_enough(miou, b, 0.02):
            hint = "that is the pixel accuracy; mean IoU gives each class the same weight, however rare"
        elif _core.close_enough(miou, b / 6, 0.02) and k != 6:
            hint = f"only the {k} classes present in prediction or target count; absent classes are skipped"
        c.true(
            _core.close_enough(miou, measured["mean_iou"], 0.03),
            f"mean IoU: you predicted {miou!r}, measured {measured['mean_iou']:.3f}",
            hint,
        )
