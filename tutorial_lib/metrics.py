"""Segmentation metrics: confusion matrix, per-class IoU, mean IoU, pixel accuracy.

Conventions (the ones Pascal VOC, ADE20K and mmsegmentation use):

* pixels whose target equals ``ignore_index`` (255 by default) are left out
  everywhere;
* IoU of class c is ``TP / (TP + FP + FN)`` accumulated over the whole dataset (not
  averaged per image);
* a class absent from both prediction and target has no IoU (``nan``) and is
  excluded from the mean; a class present in the target but never predicted (or
  predicted but absent) has IoU 0.
"""

from __future__ import annotations

import torch

__all__ = [
    "confusion_matrix",
    "iou_per_class",
    "mean_iou",
    "pixel_accuracy",
    "boundary_band",
    "trimap_target",
]


def confusion_matrix(
    pred: torch.Tensor,
    target: torch.Tensor,
    num_classes: int,
    ignore_index: int = 255,
) -> torch.Tensor:
    """``(num_classes, num_classes)`` int64 counts: row = true class, column =
    predicted class.

    ``pred`` and ``target`` are integer label maps of the same shape (any rank).
    Targets equal to ``ignore_index`` are skipped; other labels outside
    ``[0, num_classes)`` raise ``ValueError``.
    """
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, int)
        or num_classes <= 0
    ):
        raise ValueError(
            f"confusion_matrix: expected num_classes a positive int, got {num_classes!r}"
        )
    if pred.shape != target.shape:
        raise ValueError(
            f"confusion_matrix: expected pred and target of the same shape, got "
            f"{tuple(pred.shape)} and {tuple(target.shape)} (take argmax over classes first)"
        )
    if pred.is_floating_point() or target.is_floating_point():
        raise ValueError(
            "confusion_matrix: expected integer label maps, got a floating-point tensor "
            "(take logits.argmax(1) first)"
        )
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    keep = target != ignore_index
    pred, target = pred[keep], target[keep]
    for name, t in (("target", target), ("pred", pred)):
        if t.numel() and (t.min() < 0 or t.max() >= num_classes):
            raise ValueError(
                f"confusion_matrix: {name} labels must lie in [0, {num_classes}) or equal "
                f"ignore_index={ignore_index}; got values in [{t.min().item()}, {t.max().item()}]"
            )
    counts = torch.bincount(target * num_classes + pred, minlength=num_classes**2)
    return counts.reshape(num_classes, num_classes)


def iou_per_class(confusion: torch.Tensor) -> torch.Tensor:
    """IoU of each class from a confusion matrix; ``nan`` for classes absent from
    pred and target."""
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]:
        raise ValueError(
            f"iou_per_class: expected a square confusion matrix, got shape {tuple(confusion.shape)}"
        )
    confusion = confusion.double()
    tp = confusion.diag()
    union = confusion.sum(0) + confusion.sum(1) - tp
    return torch.where(
        union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan"))
    )


def mean_iou(confusion: torch.Tensor) -> float:
    """Mean of :func:`iou_per_class` over the classes that occur (absent classes
    excluded)."""
    iou = iou_per_class(confusion)
    present = ~torch.isnan(iou)
    if not present.any():
        raise ValueError(
            "mean_iou: the confusion matrix is empty (every pixel ignored?)"
        )
    return float(iou[present].mean())


def pixel_accuracy(confusion: torch.Tensor) -> float:
    """Fraction of non-ignored pixels whose predicted class is correct."""
    total = confusion.sum()
    if total == 0:
        raise ValueError(
            "pixel_accuracy: the confusion matrix is empty (every pixel ignored?)"
        )
    return float(confusion.diag().sum().double() / total.double())


def boundary_band(target: torch.Tensor, width: int) -> torch.Tensor:
    """The pixels within ``width`` pixels (chessboard distance) of a label boundary.

    ``target``: an integer label map ``(H, W)`` or a batch ``(B, H, W)``; a pixel is on
    a boundary when one of its 8 neighbours has another label. Returns a boolean map
    of the same shape: the "trimap" band in which DeepLabV3+ (Chen et al., 2018,
    Fig. 5) scores how well a model recovers object outlines.
    """
    if isinstance(width, bool) or not isinstance(width, int) or width < 0:
        raise ValueError(
            f"boundary_band: expected width a non-negative int, got {width!r}"
        )
    if target.ndim not in (2, 3) or target.is_floating_point():
        raise ValueError(
            f"boundary_band: expected an integer label map (H, W) or (B, H, W), got "
            f"{target.dtype} of shape {tuple(target.shape)}"
        )
    t = target[None] if target.ndim == 2 else target
    t = t[:, None].double()  # (B, 1, H, W)
    pooled_max = torch.nn.functional.max_pool2d(
        torch.nn.functional.pad(t, (1, 1, 1, 1), mode="replicate"), 3, stride=1
    )
    pooled_min = -torch.nn.functional.max_pool2d(
        torch.nn.functional.pad(-t, (1, 1, 1, 1), mode="replicate"), 3, stride=1
    )
    edge = (pooled_max != pooled_min).double()  # (B, 1, H, W): 1 on a boundary
    if width > 0:
        edge = torch.nn.functional.max_pool2d(
            edge, 2 * width + 1, stride=1, padding=width
        )
    band = edge[:, 0] > 0
    return band[0] if target.ndim == 2 else band


def trimap_target(
    target: torch.Tensor, width: int, ignore_index: int = 255
) -> torch.Tensor:
    """``target`` with every pixel outside :func:`boundary_band` set to
    ``ignore_index``: pass it to :func:`confusion_matrix` to score only the band."""
    band = boundary_band(target, width)
    return torch.where(band, target, torch.full_like(target, ignore_index))
