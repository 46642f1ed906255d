"""Metrics on hand-computed cases: ignore index, absent classes, dataset-level accumulation."""
import math

import pytest
import torch

from tutorial_lib.metrics import confusion_matrix, iou_per_class, mean_iou, pixel_accuracy


def test_confusion_matrix_hand_case():
    target = torch.tensor([[0, 0, 1], [1, 2, 255]])
    pred = torch.tensor([[0, 1, 1], [1, 2, 0]])
    cm = confusion_matrix(pred, target, num_classes=3)
    # rows = truth, columns = prediction; the 255 pixel is ignored
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [0, 0, 1]]


def test_iou_and_mean_by_hand():
    target = torch.tensor([0, 0, 1, 1, 2, 255])
    pred = torch.tensor([0, 1, 1, 1, 2, 1])
    cm = confusion_matrix(pred, target, num_classes=4)
    iou = iou_per_class(cm)
    # class 0: TP 1, FP 0, FN 1 -> 1/2; class 1: TP 2, FP 1, FN 0 -> 2/3; class 2: 1; class 3 absent -> nan
    assert iou[:3].tolist() == pytest.approx([0.5, 2 / 3, 1.0])
    assert math.isnan(iou[3].item())
    assert mean_iou(cm) == pytest.approx((0.5 + 2 / 3 + 1.0) / 3)
    assert pixel_accuracy(cm) == pytest.approx(4 / 5)


def test_class_predicted_but_absent_in_target_counts_as_zero():
    target = torch.tensor([0, 0, 0, 0])
    pred = torch.tensor([0, 0, 0, 1])
    iou = iou_per_class(confusion_matrix(pred, target, 3))
    assert iou[0].item() == pytest.approx(0.75)
    assert iou[1].item() == 0.0  # predicted, never true: IoU 0, included in the mean
    assert math.isnan(iou[2].item())
    assert mean_iou(confusion_matrix(pred, target, 3)) == pytest.approx(0.375)


def test_dataset_level_accumulation_differs_from_per_image_mean():
    t1, p1 = torch.tensor([1, 1, 1, 1]), torch.tensor([1, 1, 1, 1])
    t2, p2 = torch.tensor([1, 0, 0, 0]), torch.tensor([0, 0, 0, 0])
    cm = confusion_matrix(p1, t1, 2) + confusion_matrix(p2, t2, 2)
    assert iou_per_class(cm).tolist() == pytest.approx([3 / 4, 4 / 5])


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="same shape"):
        confusion_matrix(torch.zeros(2, 3, dtype=torch.long), torch.zeros(3, 2, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="integer label maps"):
        confusion_matrix(torch.zeros(4), torch.zeros(4, dtype=torch.long), 2)
    with pytest.raises(ValueError, match=r"lie in \[0, 2\)"):
        confusion_matrix(torch.tensor([0, 5]), torch.tensor([0, 1]), 2)
    with pytest.raises(ValueError, match="num_classes"):
        confusion_matrix(torch.tensor([0]), torch.tensor([0]), 0)
    with pytest.raises(ValueError, match="empty"):
        mean_iou(confusion_matrix(torch.tensor([0]), torch.tensor([255]), 2))
