"""Training and evaluation loops, as the papers train: AdamW, poly schedule with linear warm-up.

Models return logits ``(B, K, h, w)`` at any output stride; the loss is computed on logits
upsampled bilinearly to the label size (as mmsegmentation does). A model may instead return a
dict ``{"out": logits, "aux": [logits, ...]}`` in training mode (SETR's auxiliary heads); the
auxiliary losses are added with weight ``aux_weight`` (0.4 in SETR).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .metrics import confusion_matrix, iou_per_class, mean_iou, pixel_accuracy
from .utils import seed_everything

__all__ = ["RECIPE_SMALL", "poly_lr_factor", "History", "EvalResult", "fit", "evaluate", "predict", "segmentation_loss"]


#: The book's standard CPU training recipe (with ``data.standard_splits()``): a few epochs of AdamW
#: at a higher learning rate than the papers use, because the models are small and the budget is
#: seconds, not GPU-days. Chapters that compare models pass these keyword arguments to :func:`fit`.
RECIPE_SMALL = dict(epochs=6, batch_size=16, lr=3e-3, weight_decay=0.01, power=1.0, seed=0)


def poly_lr_factor(step: int, total_steps: int, warmup_steps: int = 0, power: float = 1.0) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up to 1, then ``(1 - t)^power`` decay to 0."""
    if total_steps <= 0:
        raise ValueError(f"poly_lr_factor: expected total_steps > 0, got {total_steps}")
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"poly_lr_factor: expected 0 <= warmup_steps < total_steps={total_steps}, got {warmup_steps}")
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return max(0.0, 1.0 - progress) ** power


def _split_output(out: Any) -> Tuple[torch.Tensor, Sequence[torch.Tensor]]:
    if isinstance(out, torch.Tensor):
        return out, []
    if isinstance(out, dict) and "out" in out:
        return out["out"], list(out.get("aux", []))
    raise ValueError(f"expected the model to return logits (B, K, h, w) or a dict with 'out' (and 'aux'), "
                     f"got {type(out).__name__}")


def segmentation_loss(out: Any, target: torch.Tensor, ignore_index: int = 255,
                      aux_weight: float = 0.4) -> torch.Tensor:
    """Cross-entropy of logits upsampled to the label size, plus weighted auxiliary losses."""
    main, aux = _split_output(out)
    loss = torch.zeros((), device=target.device)
    for weight, logits in [(1.0, main)] + [(aux_weight, a) for a in aux]:
        if logits.shape[-2:] != target.shape[-2:]:
            logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
        loss = loss + weight * F.cross_entropy(logits, target, ignore_index=ignore_index)
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
    """Per-step training loss and learning rate, and validation results after each epoch."""

    steps: List[int] = field(default_factory=list)
    train_loss: List[float] = field(default_factory=list)
    lr: List[float] = field(default_factory=list)
    val_steps: List[int] = field(default_factory=list)
    val: List[EvalResult] = field(default_factory=list)

    @property
    def final(self) -> Optional[EvalResult]:
        """The last validation result (``None`` without validation data)."""
        return self.val[-1] if self.val else None

    def __repr__(self) -> str:
        last = f", final={self.final!r}" if self.val else ""
        return f"History(steps={len(self.steps)}, last_loss={self.train_loss[-1]:.4f}{last})" if self.steps else "History()"


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Class labels ``(B, H, W)`` at the input size (logits upsampled bilinearly, then argmax)."""
    was_training = model.training
    model.eval()
    try:
        logits, _ = _split_output(model(images))
    finally:
        model.train(was_training)
    if logits.shape[-2:] != images.shape[-2:]:
        logits = F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)
    return logits.argmax(1)


@torch.no_grad()
def evaluate(model: nn.Module, data: Dataset, num_classes: int, batch_size: int = 16,
             ignore_index: int = 255) -> EvalResult:
    """Mean IoU and pixel accuracy of ``model`` over ``data`` (dataset-level confusion matrix)."""
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    for images, masks in DataLoader(data, batch_size=batch_size, shuffle=False):
        confusion += confusion_matrix(predict(model, images), masks, num_classes, ignore_index)
    return EvalResult(mean_iou(confusion), pixel_accuracy(confusion), iou_per_class(confusion), confusion)


def fit(model: nn.Module, train_data: Dataset, val_data: Optional[Dataset] = None, *,
        num_classes: int, epochs: int = 1, batch_size: int = 8, lr: float = 1e-3,
        weight_decay: float = 0.01, warmup_steps: Optional[int] = None, power: float = 1.0,
        ignore_index: int = 255, aux_weight: float = 0.4, seed: int = 0,
        progress: bool = True, max_steps: Optional[int] = None) -> History:
    """Train ``model`` with AdamW and a poly learning-rate schedule with linear warm-up.

    Deterministic for a given ``seed`` (shuffling and initialisation-independent). Warm-up
    defaults to 10% of the steps. Validation (if ``val_data`` is given) runs after each epoch.
    Returns the :class:`History`.
    """
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("num_classes", num_classes)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"fit: expected {name} a positive int, got {value!r}")
    if len(train_data) == 0:
        raise ValueError("fit: expected a non-empty training dataset")
    from tqdm.auto import tqdm

    seed_everything(seed)
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(train_data, batch_size=batch_size, shuffle=True, drop_last=len(train_data) >= batch_size,
                        generator=generator)
    total = epochs * len(loader) if max_steps is None else min(max_steps, epochs * len(loader))
    warmup = max(1, total // 10) if warmup_steps is None else warmup_steps
    warmup = min(warmup, total - 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: poly_lr_factor(min(s, total - 1), total, warmup, power))
    history = History()
    step = 0
    bar = tqdm(total=total, disable=not progress, desc="training", leave=True)
    for epoch in range(epochs):
        model.train()
        for images, masks in loader:
            if step >= total:
                break
            loss = segmentation_loss(model(images), masks, ignore_index, aux_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            history.steps.append(step)
            history.train_loss.append(loss.item())
            history.lr.append(optimizer.param_groups[0]["lr"])
            schedule.step()
            step += 1
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{history.train_loss[-1]:.3f}")
        if val_data is not None:
            result = evaluate(model, val_data, num_classes, batch_size=max(batch_size, 16), ignore_index=ignore_index)
            history.val_steps.append(step)
            history.val.append(result)
            bar.set_postfix(epoch=epoch + 1, loss=f"{history.train_loss[-1]:.3f}", val_miou=f"{result.miou:.3f}")
        if step >= total:
            break
    bar.close()
    model.eval()
    return history
