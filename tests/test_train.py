"""fit/evaluate/predict: schedule, determinism, auxiliary losses, label-size loss."""
import pytest
import torch
from torch import nn

from tutorial_lib.data import SyntheticScenes
from tutorial_lib.models.fcn import tiny_fcn
from tutorial_lib.train import evaluate, fit, poly_lr_factor, predict, segmentation_loss


def test_poly_schedule_with_warmup():
    factors = [poly_lr_factor(s, 10, warmup_steps=2) for s in range(10)]
    assert factors[:2] == pytest.approx([0.5, 1.0])
    assert factors[2] == pytest.approx(1.0) and factors[-1] == pytest.approx(1 / 8)
    assert all(a >= b for a, b in zip(factors[2:], factors[3:]))
    with pytest.raises(ValueError):
        poly_lr_factor(0, 10, warmup_steps=10)


def test_fit_is_deterministic_and_learns():
    train, val = SyntheticScenes(32, size=32, seed=0), SyntheticScenes(16, size=32, seed=1)
    runs = []
    for _ in range(2):
        torch.manual_seed(123)  # different init seeds must not matter: fit seeds itself
        model = tiny_fcn(widths=(8, 16))
        runs.append(fit(model, train, val, num_classes=6, epochs=2, batch_size=8, lr=3e-3, progress=False))
    assert runs[0].train_loss == runs[1].train_loss
    assert runs[0].final.miou == runs[1].final.miou
    assert runs[0].train_loss[-1] < runs[0].train_loss[0]
    assert len(runs[0].steps) == 8 and len(runs[0].val) == 2


def test_loss_upsamples_logits_and_adds_aux():
    target = torch.randint(0, 3, (2, 16, 16))
    small = torch.zeros(2, 3, 4, 4, requires_grad=True)
    loss = segmentation_loss(small, target)
    assert loss.item() == pytest.approx(torch.log(torch.tensor(3.0)).item(), rel=1e-5)
    with_aux = segmentation_loss({"out": small, "aux": [small, small]}, target, aux_weight=0.4)
    assert with_aux.item() == pytest.approx(1.8 * loss.item(), rel=1e-5)
    with pytest.raises(ValueError, match="dict with 'out'"):
        segmentation_loss([small], target)


def test_predict_and_evaluate_shapes():
    model = tiny_fcn(widths=(8,))
    data = SyntheticScenes(4, size=(24, 40), seed=0)
    images = torch.stack([data[i][0] for i in range(4)])
    assert predict(model, images).shape == (4, 24, 40)
    result = evaluate(model, data, num_classes=6)
    assert 0.0 <= result.miou <= 1.0 and result.confusion.sum() == 4 * 24 * 40


def test_fit_validates_arguments():
    with pytest.raises(ValueError, match="epochs"):
        fit(nn.Conv2d(3, 6, 1), SyntheticScenes(4, 8), num_classes=6, epochs=0, progress=False)
