"""fit/evaluate/predict: schedule, determinism, auxiliary losses, label-size loss, devices, AMP."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from tutorial_lib.data import SyntheticScenes
from tutorial_lib.metrics import confusion_matrix
from tutorial_lib.models.fcn import tiny_fcn
from tutorial_lib.train import (DEVICE_ENV, History, _amp_dtype, default_device, evaluate, fit, poly_lr_factor,
                                predict, segmentation_loss)
from tutorial_lib.utils import seed_everything


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


# --- devices and mixed precision --------------------------------------------------------------


class _AuxNet(nn.Module):
    """Stride-2 features with a main and (in training) an auxiliary head, like SETR's."""

    def __init__(self) -> None:
        super().__init__()
        self.body, self.head, self.aux = nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.Conv2d(8, 6, 1), nn.Conv2d(8, 6, 1)

    def forward(self, x):
        f = torch.relu(self.body(x))
        return {"out": self.head(f), "aux": [self.aux(f)]} if self.training else self.head(f)


def _reference_fit(model, data, *, epochs, batch_size, lr, weight_decay=0.01, seed=0, aux_weight=0.4):
    """The pre-device ``fit``, written out: the algorithm the chapters' stored CPU outputs come from."""
    seed_everything(seed)
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, drop_last=len(data) >= batch_size,
                        generator=torch.Generator().manual_seed(seed))
    total = epochs * len(loader)
    warmup = min(max(1, total // 10), total - 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: poly_lr_factor(min(s, total - 1), total, warmup))
    losses, lrs = [], []
    for _ in range(epochs):
        model.train()
        for images, masks in loader:
            out = model(images)
            main, aux = (out, []) if isinstance(out, torch.Tensor) else (out["out"], out["aux"])
            loss = torch.zeros(())
            for weight, logits in [(1.0, main)] + [(aux_weight, a) for a in aux]:
                if logits.shape[-2:] != masks.shape[-2:]:
                    logits = F.interpolate(logits, size=masks.shape[-2:], mode="bilinear", align_corners=False)
                loss = loss + weight * F.cross_entropy(logits, masks, ignore_index=255)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            lrs.append(optimizer.param_groups[0]["lr"])
            schedule.step()
    model.eval()
    return losses, lrs


def _reference_labels(model, images):
    logits = model.eval()(images)
    return F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False).argmax(1)


@pytest.mark.parametrize("make_model", [lambda: tiny_fcn(widths=(8, 16)), _AuxNet], ids=["fcn", "aux"])
def test_cpu_results_are_bitwise_those_of_the_reference_loop(make_model):
    train, val = SyntheticScenes(20, size=32, seed=0), SyntheticScenes(6, size=32, seed=1)
    torch.manual_seed(7)
    model = make_model()
    reference = copy.deepcopy(model)
    history = fit(model, train, num_classes=6, epochs=2, batch_size=8, lr=3e-3, progress=False)
    losses, lrs = _reference_fit(reference, train, epochs=2, batch_size=8, lr=3e-3)
    assert history.train_loss == losses and history.lr == lrs  # exact float equality, every step
    for (name, p), q in zip(model.state_dict().items(), reference.state_dict().values()):
        assert torch.equal(p, q), name
    assert (history.device, history.amp) == ("cpu", None)
    images = torch.stack([val[i][0] for i in range(6)])
    expected = _reference_labels(reference, images)
    assert torch.equal(predict(model, images), expected)
    masks = torch.stack([val[i][1] for i in range(6)])
    confusion = confusion_matrix(expected, masks, 6)
    result = evaluate(model, val, num_classes=6, batch_size=4)
    assert torch.equal(result.confusion, confusion) and result.confusion.device.type == "cpu"


def test_default_device_honours_the_environment(monkeypatch):
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    assert default_device() == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv(DEVICE_ENV, " cpu ")
    assert default_device() == torch.device("cpu")
    for junk in ("gpu", "meta", "cuda:x", "cpu,cuda"):
        monkeypatch.setenv(DEVICE_ENV, junk)
        with pytest.raises(ValueError, match=DEVICE_ENV):
            default_device()
    monkeypatch.setenv(DEVICE_ENV, f"cuda:{torch.cuda.device_count()}")  # one past the last GPU
    with pytest.raises(ValueError, match="a device this machine has"):
        default_device()


def test_default_device_uses_mps_only_on_request(monkeypatch):
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert default_device() == torch.device("cpu")
    assert default_device(allow_mps=True) == torch.device("mps")


def test_amp_on_cpu_trains_in_bfloat16():
    train = SyntheticScenes(16, size=32, seed=0)
    torch.manual_seed(0)
    model = tiny_fcn(widths=(8, 16))
    history = fit(model, train, train, num_classes=6, epochs=3, batch_size=8, lr=3e-3, progress=False, amp=True)
    assert (history.device, history.amp) == ("cpu", "bfloat16") and "amp=bfloat16" in repr(history)
    assert all(math.isfinite(loss) for loss in history.train_loss)
    assert history.train_loss[-1] < history.train_loss[0]
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast casts copies, not weights
    images = torch.stack([train[i][0] for i in range(4)])
    labels = predict(model, images, amp=torch.bfloat16)
    assert labels.shape == (4, 32, 32) and labels.dtype == torch.int64
    assert 0.0 <= evaluate(model, train, num_classes=6, amp=True).miou <= 1.0


@pytest.mark.parametrize("amp", ["yes", None, 1, torch.float32, torch.float64])
def test_bad_amp_raises(amp):
    model, data = tiny_fcn(widths=(8,)), SyntheticScenes(4, size=16, seed=0)
    with pytest.raises(ValueError, match="expected amp False, True"):
        fit(model, data, num_classes=6, progress=False, amp=amp)
    with pytest.raises(ValueError, match="evaluate: expected amp"):
        evaluate(model, data, num_classes=6, amp=amp)
    with pytest.raises(ValueError, match="predict: expected amp"):
        predict(model, torch.zeros(1, 3, 16, 16), amp=amp)


def test_amp_true_on_an_unfamiliar_device_asks_for_a_dtype():
    with pytest.raises(ValueError, match="pass amp=torch.bfloat16"):
        _amp_dtype(True, torch.device("mps"), "fit")
    assert _amp_dtype(torch.float16, torch.device("cpu"), "fit") == torch.float16


def test_meta_model_moves_inputs_and_refuses_to_train():
    model = tiny_fcn(widths=(8,)).to("meta")
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append(args[0].device))
    labels = predict(model, torch.zeros(2, 3, 24, 40))  # CPU images, moved to the model's device
    assert seen == [torch.device("meta")] and labels.device.type == "meta" and labels.shape == (2, 24, 40)
    data = SyntheticScenes(4, size=16, seed=0)
    with pytest.raises(ValueError, match="meta device"):
        fit(model, data, num_classes=6, progress=False)
    with pytest.raises(ValueError, match="meta device"):
        evaluate(model, data, num_classes=6)


def test_parameterless_model_runs_on_cpu():
    model = nn.Upsample(scale_factor=1.0)  # "logits" = the image itself: 3 classes
    images = torch.rand(2, 3, 8, 8)
    assert torch.equal(predict(model, images), images.argmax(1))
    with pytest.raises(ValueError, match="predict: expected a 4-D tensor"):
        predict(model, images[0])


def test_history_repr_shows_device_and_amp_only_off_the_cpu_default():
    assert repr(History(steps=[0], train_loss=[1.0])) == "History(steps=1, last_loss=1.0000)"
    gpu = History(steps=[0], train_loss=[1.0], device="cuda:0", amp="float16")
    assert repr(gpu) == "History(steps=1, last_loss=1.0000, device=cuda:0, amp=float16)"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("amp", [False, True, torch.float16], ids=["fp32", "amp", "fp16-scaler"])
def test_fit_evaluate_predict_on_cuda(amp):
    train, val = SyntheticScenes(32, size=32, seed=0), SyntheticScenes(16, size=32, seed=1)
    torch.manual_seed(0)
    model = tiny_fcn(widths=(8, 16)).to(default_device())
    history = fit(model, train, val, num_classes=6, epochs=3, batch_size=8, lr=3e-3, progress=False, amp=amp)
    assert history.device.startswith("cuda") and all(t.is_cuda for t in model.state_dict().values())
    expected_amp = {False: [None], True: ["bfloat16", "float16"], torch.float16: ["float16"]}[amp]
    assert history.amp in expected_amp and len(history.val) == 3
    assert all(math.isfinite(loss) for loss in history.train_loss)
    assert history.train_loss[-1] < history.train_loss[0]
    result = evaluate(model, val, num_classes=6, amp=amp)
    assert 0.0 <= result.miou <= 1.0 and result.confusion.device.type == "cpu"
    assert result.confusion.sum() == 16 * 32 * 32
    images = torch.stack([val[i][0] for i in range(4)])
    labels = predict(model, images, amp=amp)  # CPU images in, CPU labels out
    assert labels.device.type == "cpu" and labels.shape == (4, 32, 32)
    on_gpu = predict(model, images.cuda(), amp=amp)
    assert on_gpu.is_cuda and (on_gpu.cpu() == labels).float().mean() > 0.99


def test_slide_logits_windows_and_average():
    """Sliding-window inference: one window when the image is the crop; overlapping
    windows averaged; for a per-pixel model, the same logits as one full pass."""
    from tutorial_lib.train import _window_starts, slide_logits

    assert _window_starts(512, 512, 341) == [0]
    assert _window_starts(683, 512, 341) == [0, 171]  # mmseg: the last window ends at the border
    assert _window_starts(1024, 512, 341) == [0, 341, 512]
    torch.manual_seed(0)
    pointwise = torch.nn.Conv2d(3, 4, 1)
    x = torch.randn(2, 3, 40, 56)
    torch.testing.assert_close(slide_logits(pointwise, x, crop=32, stride=20), pointwise(x))
    with pytest.raises(ValueError, match="at least crop"):
        slide_logits(pointwise, x, crop=48, stride=20)
    with pytest.raises(ValueError, match="stride <= crop"):
        slide_logits(pointwise, x, crop=32, stride=40)


def test_fit_schedule_steps_lays_out_a_longer_schedule():
    """The first steps of a long run, trained alone: ``schedule_steps`` keeps the
    learning rates of the long run (warm-up over 10 % of it)."""
    from tutorial_lib.data import SyntheticScenes
    from tutorial_lib.models.fcn import FCNConfig, TinyFCN

    seen = []

    class Spy(torch.optim.AdamW):
        def step(self, closure=None):
            seen.append(self.param_groups[0]["lr"])
            return super().step(closure)

    data = SyntheticScenes(8, size=32, seed=0)
    original = torch.optim.AdamW
    torch.optim.AdamW = Spy
    try:
        fit(TinyFCN(FCNConfig(num_classes=6)), data, num_classes=6, batch_size=4, lr=1.0,
            max_steps=2, schedule_steps=100, progress=False)
    finally:
        torch.optim.AdamW = original
    assert seen == pytest.approx([poly_lr_factor(s, 100, 10) for s in range(2)])
    with pytest.raises(ValueError, match="schedule_steps"):
        fit(TinyFCN(FCNConfig(num_classes=6)), data, num_classes=6, batch_size=4, max_steps=2,
            schedule_steps=1, progress=False)
