"""Training and evaluation loops, as the papers train: AdamW, poly schedule with
linear warm-up.

Models return logits ``(B, K, h, w)`` at any output stride; the loss is computed on
logits upsampled bilinearly to the label size (as mmsegmentation does). A model may
instead return a dict ``{"out": logits, "aux": [logits, ...]}`` in training mode
(SETR's auxiliary heads); the auxiliary losses are added with weight ``aux_weight``
(0.4 in SETR).

**Devices.** :func:`fit`, :func:`evaluate` and :func:`predict` run on the model's
device (that of its first parameter or buffer; CPU with neither): move the model
once, ``model.to(default_device())``. Batches come from a CPU ``DataLoader``
shuffled by a CPU generator, so every device sees the same batches in the same
order, and are copied over with ``non_blocking=True`` (from pinned memory on CUDA).
On CPU the loops do exactly the operations they always did, so the chapters'
outputs, recorded on CPU, reproduce bit for bit; a GPU differs in the last digits
(other kernels).

**Mixed precision.** ``amp=True`` runs the forward pass under :func:`torch.autocast`
in bfloat16 where the device computes it natively (CPU; CUDA compute capability >=
8), else in float16 (older GPUs such as Colab's T4) with a
:class:`torch.amp.GradScaler`; ``amp=torch.bfloat16`` or ``torch.float16`` chooses.
The loss is always computed in float32 (see :func:`segmentation_loss`).
"""

from __future__ import annotations

import contextlib
import itertools
import os
from dataclasses import dataclass, field
from typing import Any, ContextManager, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ._validate import check_image_batch, check_positive
from .metrics import confusion_matrix, iou_per_class, mean_iou, pixel_accuracy
from .utils import seed_everything

__all__ = [
    "RECIPE_SMALL",
    "poly_lr_factor",
    "History",
    "EvalResult",
    "fit",
    "evaluate",
    "predict",
    "slide_logits",
    "segmentation_loss",
    "default_device",
    "DEVICE_ENV",
]

#: Environment variable that overrides :func:`default_device` (``cpu`` forces CPU on a GPU runtime).
DEVICE_ENV = "TUTORIAL_LIB_DEVICE"
_AMP_DTYPES = (torch.bfloat16, torch.float16)

#: The short live run of chapters 01, 05 and 07 (with ``data.standard_splits()``): 200 steps of
#: AdamW at a higher learning rate than the papers use, because the models are small and the
#: budget is seconds, not GPU-days. It shows the training loop; the results the book reports
#: come from ``make experiments`` (:data:`tutorial_lib.experiments.RECIPE`: the same settings,
#: 1,000 steps, three seeds).
RECIPE_SMALL = dict(
    epochs=1,
    max_steps=200,
    batch_size=16,
    lr=3e-3,
    weight_decay=0.01,
    power=1.0,
    seed=0,
)


def default_device(allow_mps: bool = False) -> torch.device:
    """The device the chapters train on: ``cuda`` when a GPU is available, else
    ``cpu``.

    The environment variable ``TUTORIAL_LIB_DEVICE`` overrides the choice: ``cpu``
    forces the CPU on a GPU runtime (to reproduce the book's numbers exactly),
    ``cuda``, ``cuda:1`` or ``mps`` ask for that device. Anything else, or a device
    this machine lacks, raises ``ValueError``.

    Apple's ``mps`` is used only on request (``allow_mps=True`` or the variable):
    some operators the models use are missing there (they fall back to the CPU or
    fail) and its kernels are not deterministic, so results would not reproduce and
    need not be faster.
    """
    requested = os.environ.get(DEVICE_ENV, "").strip()
    if requested:
        device = None
        # torch's own message for junk lists every backend
        with contextlib.suppress(RuntimeError):
            device = torch.device(requested)
        if device is None or not (
            device.type == "cpu"
            or device.type == "mps"
            and torch.backends.mps.is_available()
            or device.type == "cuda"
            and (device.index or 0) < torch.cuda.device_count()
        ):
            raise ValueError(
                f"default_device: expected {DEVICE_ENV} to name a device this machine has ('cpu', "
                f"'cuda' or 'cuda:<index>' with {torch.cuda.device_count()} GPU(s), 'mps' where "
                f"available), got {requested!r}"
            )
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if allow_mps and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _model_device(
    model: nn.Module, caller: str, allow_meta: bool = False
) -> torch.device:
    """Device of the model's first parameter or buffer (CPU without either)."""
    device = next(
        (t.device for t in itertools.chain(model.parameters(), model.buffers())),
        torch.device("cpu"),
    )
    if device.type == "meta" and not allow_meta:
        raise ValueError(
            f"{caller}: expected a model with real weights, got parameters on the meta device "
            f"(materialise it first, e.g. model.to_empty(device='cpu') and load a state dict)"
        )
    return device


def _amp_dtype(
    amp: Any, device: torch.device, caller: str
) -> Optional[torch.dtype]:
    """The autocast dtype ``amp`` asks for on ``device`` (``None``: full
    precision)."""
    if amp is False:
        return None
    if amp is not True and not (
        isinstance(amp, torch.dtype) and amp in _AMP_DTYPES
    ):
        raise ValueError(
            f"{caller}: expected amp False, True, torch.bfloat16 or torch.float16, got {amp!r}"
        )
    if amp is True:
        if device.type == "cpu":
            return torch.bfloat16
        if device.type != "cuda":
            raise ValueError(
                f"{caller}: amp=True chooses a dtype only on 'cpu' and 'cuda'; on {device.type!r} "
                f"pass amp=torch.bfloat16 or amp=torch.float16"
            )
        # compute capability, not torch.cuda.is_bf16_supported(), which also says yes to the slow
        # emulated bfloat16 of older GPUs such as the T4
        return (
            torch.bfloat16
            if torch.cuda.get_device_capability(device)[0] >= 8
            else torch.float16
        )
    if not torch.amp.is_autocast_available(device.type):
        raise ValueError(
            f"{caller}: expected a device with autocast support for amp={amp}, got {device.type!r}"
        )
    return amp


def _autocast(
    device: torch.device, dtype: Optional[torch.dtype]
) -> ContextManager[Any]:
    # without amp, no autocast context at all: the CPU path stays the exact pre-AMP code path
    return (
        torch.autocast(device.type, dtype=dtype)
        if dtype is not None
        else contextlib.nullcontext()
    )


def poly_lr_factor(
    step: int, total_steps: int, warmup_steps: int = 0, power: float = 1.0
) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up to 1, then
    ``(1 - t)^power`` decay to 0."""
    if total_steps <= 0:
        raise ValueError(
            f"poly_lr_factor: expected total_steps > 0, got {total_steps}"
        )
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(
            f"poly_lr_factor: expected 0 <= warmup_steps < total_steps={total_steps}, got {warmup_steps}"
        )
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return max(0.0, 1.0 - progress) ** power


def _split_output(out: Any) -> Tuple[torch.Tensor, Sequence[torch.Tensor]]:
    if isinstance(out, torch.Tensor):
        return out, []
    if isinstance(out, dict) and "out" in out:
        return out["out"], list(out.get("aux", []))
    raise ValueError(
        f"expected the model to return logits (B, K, h, w) or a dict with 'out' (and 'aux'), "
        f"got {type(out).__name__}"
    )


def _at_least_float32(logits: torch.Tensor) -> torch.Tensor:
    # a no-op for float32 (and float64) logits; lifts autocast's bfloat16/float16 logits to float32
    return logits.to(torch.promote_types(logits.dtype, torch.float32))


def segmentation_loss(
    out: Any, target: torch.Tensor, ignore_index: int = 255, aux_weight: float = 0.4
) -> torch.Tensor:
    """Cross-entropy of logits upsampled to the label size, plus weighted auxiliary
    losses.

    Logits are lifted to float32 first: under mixed precision they arrive in
    bfloat16 or float16, whose 8- or 11-bit mantissas make the log-softmax and the
    mean over every pixel of the batch inaccurate (and float16 can overflow);
    float32 logits pass through unchanged.
    """
    main, aux = _split_output(out)
    loss = torch.zeros((), device=target.device)
    for weight, logits in [(1.0, main)] + [(aux_weight, a) for a in aux]:
        logits = _at_least_float32(logits)
        if logits.shape[-2:] != target.shape[-2:]:
            logits = F.interpolate(
                logits, size=target.shape[-2:], mode="bilinear", align_corners=False
            )
        loss = loss + weight * F.cross_entropy(
            logits, target, ignore_index=ignore_index
        )
    return loss


@dataclass
class EvalResult:
    """What :func:`evaluate` measures on a dataset."""

    miou: float
    pixel_accuracy: float
    iou: torch.Tensor = field(repr=False)
    confusion: torch.Tensor = field(repr=False)

    def __repr__(self) -> str:
        return f"EvalResult(mIoU={self.miou:.4f}, pixel_accuracy={self.pixel_accuracy:.4f})"


@dataclass
class History:
    """Per-step training loss and learning rate, validation results after each
    epoch, and where the model trained: ``device`` (e.g. ``'cpu'``, ``'cuda:0'``)
    and ``amp`` (the autocast dtype, ``'bfloat16'`` or ``'float16'``, or ``None``
    for full precision)."""

    steps: List[int] = field(default_factory=list)
    train_loss: List[float] = field(default_factory=list)
    lr: List[float] = field(default_factory=list)
    val_steps: List[int] = field(default_factory=list)
    val: List[EvalResult] = field(default_factory=list)
    device: str = "cpu"
    amp: Optional[str] = None

    @property
    def final(self) -> Optional[EvalResult]:
        """The last validation result (``None`` without validation data)."""
        return self.val[-1] if self.val else None

    def __repr__(self) -> str:
        if not self.steps:
            return "History()"
        # device and amp only when they differ from the CPU default, so CPU outputs read as before
        where = (f", device={self.device}" if self.device != "cpu" else "") + (
            f", amp={self.amp}" if self.amp else ""
        )
        last = f", final={self.final!r}" if self.val else ""
        return f"History(steps={len(self.steps)}, last_loss={self.train_loss[-1]:.4f}{where}{last})"


def _predict(
    model: nn.Module, images: torch.Tensor, dtype: Optional[torch.dtype]
) -> torch.Tensor:
    """Labels of ``images`` (already on the model's device), on that device."""
    was_training = model.training
    model.eval()
    try:
        with _autocast(images.device, dtype):
            logits, _ = _split_output(model(images))
    finally:
        model.train(was_training)
    logits = _at_least_float32(logits)
    if logits.shape[-2:] != images.shape[-2:]:
        logits = F.interpolate(
            logits, size=images.shape[-2:], mode="bilinear", align_corners=False
        )
    return logits.argmax(1)


def _window_starts(size: int, crop: int, stride: int) -> List[int]:
    """Window starts along one axis, mmseg's ``slide_inference``:
    ``ceil((size - crop) / stride) + 1`` windows, the last one moved back to end at
    the border."""
    count = max(-(-(size - crop) // stride), 0) + 1
    return sorted({max(min(i * stride, size - crop), 0) for i in range(count)})


@torch.no_grad()
def slide_logits(
    model: nn.Module, images: torch.Tensor, crop: int, stride: int
) -> torch.Tensor:
    """Sliding-window inference: logits ``(B, K, H, W)`` of ``crop × crop`` windows
    every ``stride`` pixels, averaged where windows overlap (SETR's and SegFormer's
    official test mode ``slide``, e.g. ADE20K: crop 512, stride 341).

    For models that accept one input size only (ViT position embeddings): an image
    larger than ``crop`` is covered by windows of exactly that size.
    """
    check_image_batch(images, "slide_logits")
    check_positive(crop, "slide_logits crop")
    check_positive(stride, "slide_logits stride")
    h, w = images.shape[-2:]
    if h < crop or w < crop:
        raise ValueError(
            f"slide_logits: expected an image at least crop={crop} on each side, "
            f"got {h}x{w}"
        )
    if stride > crop:
        raise ValueError(
            f"slide_logits: expected stride <= crop={crop} (no gaps), got {stride}"
        )
    was_training = model.training
    model.eval()
    total, count = None, images.new_zeros(1, 1, h, w)
    try:
        for top in _window_starts(h, crop, stride):
            for left in _window_starts(w, crop, stride):
                window = images[..., top : top + crop, left : left + crop]
                logits, _ = _split_output(model(window))
                logits = _at_least_float32(logits)
                if logits.shape[-2:] != (crop, crop):
                    logits = F.interpolate(
                        logits,
                        size=(crop, crop),
                        mode="bilinear",
                        align_corners=False,
                    )
                if total is None:
                    total = logits.new_zeros(*logits.shape[:2], h, w)
                total[..., top : top + crop, left : left + crop] += logits
                count[..., top : top + crop, left : left + crop] += 1
    finally:
        model.train(was_training)
    return total / count  # (B, K, H, W)


@torch.no_grad()
def predict(
    model: nn.Module, images: torch.Tensor, amp: Union[bool, torch.dtype] = False
) -> torch.Tensor:
    """Class labels ``(B, H, W)`` at the input size (logits upsampled bilinearly,
    then argmax).

    Runs on the model's device (``images`` are copied there) and returns the labels
    on the device of ``images``, so CPU images give CPU labels whatever the model
    runs on. A model on the ``meta`` device gives ``meta`` labels (shapes only).
    ``amp`` as in :func:`fit`.
    """
    check_image_batch(images, "predict")
    device = _model_device(model, "predict", allow_meta=True)
    # non_blocking only towards a GPU: a non_blocking copy to the host could be read before it lands
    labels = _predict(
        model,
        images.to(device, non_blocking=device.type == "cuda"),
        _amp_dtype(amp, device, "predict"),
    )
    return labels if device.type == "meta" else labels.to(images.device)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Dataset,
    num_classes: int,
    batch_size: int = 16,
    ignore_index: int = 255,
    amp: Union[bool, torch.dtype] = False,
) -> EvalResult:
    """Mean IoU and pixel accuracy of ``model`` over ``data`` (dataset-level
    confusion matrix).

    Runs on the model's device; the confusion matrix accumulates there and is
    returned on the CPU. ``amp`` as in :func:`fit`.
    """
    device = _model_device(model, "evaluate")
    dtype = _amp_dtype(amp, device, "evaluate")
    confusion = torch.zeros(
        num_classes, num_classes, dtype=torch.int64, device=device
    )
    for images, masks in DataLoader(
        data, batch_size=batch_size, shuffle=False, pin_memory=device.type == "cuda"
    ):
        pred = _predict(
            model, images.to(device, non_blocking=device.type == "cuda"), dtype
        )
        confusion += confusion_matrix(
            pred,
            masks.to(device, non_blocking=device.type == "cuda"),
            num_classes,
            ignore_index,
        )
    confusion = confusion.cpu()
    return EvalResult(
        mean_iou(confusion),
        pixel_accuracy(confusion),
        iou_per_class(confusion),
        confusion,
    )


def fit(
    model: nn.Module,
    train_data: Dataset,
    val_data: Optional[Dataset] = None,
    *,
    num_classes: int,
    epochs: int = 1,
    batch_size: int = 8,
    lr: float = 1e-3,
    weight_decay: float = 0.01,
    warmup_steps: Optional[int] = None,
    power: float = 1.0,
    ignore_index: int = 255,
    aux_weight: float = 0.4,
    seed: int = 0,
    progress: bool = True,
    max_steps: Optional[int] = None,
    amp: Union[bool, torch.dtype] = False,
    schedule_steps: Optional[int] = None,
) -> History:
    """Train ``model`` with AdamW and a poly learning-rate schedule with linear
    warm-up.

    Deterministic for a given ``seed`` (shuffling and initialisation-independent).
    Warm-up defaults to 10% of the steps. Validation (if ``val_data`` is given) runs
    after each epoch. Trains on the model's device (move the model first:
    ``model.to(default_device())``). ``amp``: ``False`` (full precision), ``True``
    (bfloat16 where the device supports it, else float16 with a gradient scaler) or
    a dtype, ``torch.bfloat16`` or ``torch.float16``. ``schedule_steps`` sets the
    length the learning-rate schedule is laid out over when it differs from the steps
    trained (the first 20 steps of a 1000-step run: ``max_steps=20,
    schedule_steps=1000``). Returns the :class:`History`, which records the device and
    the autocast dtype.
    """
    for name, value in (
        ("epochs", epochs),
        ("batch_size", batch_size),
        ("num_classes", num_classes),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"fit: expected {name} a positive int, got {value!r}")
    if len(train_data) == 0:
        raise ValueError("fit: expected a non-empty training dataset")
    device = _model_device(model, "fit")
    dtype = _amp_dtype(amp, device, "fit")
    # float16's narrow exponent flushes small gradients to zero; the scaler multiplies the loss
    # first (and skips steps whose gradients overflowed). bfloat16 has float32's range: no scaler.
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    from tqdm.auto import tqdm

    seed_everything(seed)
    # a CPU generator: the same batches on every device
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        train_data,
        batch_size=batch_size,
        shuffle=True,
        drop_last=len(train_data) >= batch_size,
        generator=generator,
        pin_memory=device.type == "cuda",
    )
    total = (
        epochs * len(loader)
        if max_steps is None
        else min(max_steps, epochs * len(loader))
    )
    if schedule_steps is not None:
        if (
            isinstance(schedule_steps, bool)
            or not isinstance(schedule_steps, int)
            or (schedule_steps < total)
        ):
            raise ValueError(
                f"fit: expected schedule_steps an int >= the {total} steps trained, "
                f"got {schedule_steps!r}"
            )
        total_schedule = schedule_steps
    else:
        total_schedule = total
    warmup = max(1, total_schedule // 10) if warmup_steps is None else warmup_steps
    warmup = min(warmup, total_schedule - 1)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=lr, weight_decay=weight_decay
    )
    history = History(
        device=str(device),
        amp=None if dtype is None else str(dtype).removeprefix("torch."),
    )
    step = 0
    bar = tqdm(total=total, disable=not progress, desc="training", leave=True)
    for epoch in range(epochs):
        model.train()
        for images, masks in loader:
            if step >= total:
                break
            # lr set as LambdaLR would (lr * factor); a scheduler would warn at steps the scaler skips
            for group in optimizer.param_groups:
                group["lr"] = lr * poly_lr_factor(
                    step, total_schedule, warmup, power
                )
            # host-to-GPU copies from pinned memory may overlap
            async_copy = device.type == "cuda"
            images, masks = (
                images.to(device, non_blocking=async_copy),
                masks.to(device, non_blocking=async_copy),
            )
            with _autocast(device, dtype):
                out = model(images)
            loss = segmentation_loss(out, masks, ignore_index, aux_weight)
            optimizer.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                optimizer.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            history.steps.append(step)
            history.train_loss.append(loss.item())
            history.lr.append(optimizer.param_groups[0]["lr"])
            step += 1
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{history.train_loss[-1]:.3f}")
        if val_data is not None:
            result = evaluate(
                model,
                val_data,
                num_classes,
                batch_size=max(batch_size, 16),
                ignore_index=ignore_index,
                amp=False if dtype is None else dtype,
            )
            history.val_steps.append(step)
            history.val.append(result)
            bar.set_postfix(
                epoch=epoch + 1,
                loss=f"{history.train_loss[-1]:.3f}",
                val_miou=f"{result.miou:.3f}",
            )
        if step >= total:
            break
    bar.close()
    model.eval()
    return history
