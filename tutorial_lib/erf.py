"""Effective receptive fields (Luo et al., NeurIPS 2016), measured by
backpropagation.

The *theoretical* receptive field of an output pixel is every input pixel that can
influence it; for a stack of convolutions its side is

.. math:: k_\\text{eff} = 1 + \\sum_i d_i (k_i - 1) \\prod_{j<i} s_j

(kernel ``k_i``, dilation ``d_i``, stride ``s_j`` of the earlier layers;
:func:`tutorial_lib.layers.atrous.receptive_field` computes it). The *effective*
receptive field (ERF) is how much each input pixel actually does influence it: Luo
et al. (§2) put a unit gradient on one output position, backpropagate, and look at
the magnitude of the gradient that reaches the input, averaged over images:

.. math:: \\mathrm{ERF}(u, v) = \\mathbb{E}_x \\sum_c \\left|\\frac{\\partial y_{p}}{\\partial x_{c,u,v}}\\right|.

Their result is that the ERF is roughly Gaussian and occupies a small fraction of
the theoretical field: for ``n`` stacked layers of uniform weights it is the
``n``-fold convolution of the kernel with itself, whose width grows as ``√n`` while
the theoretical field grows as ``n``.

:func:`erf_radius` turns an ERF map into one number: the radius of the smallest disc
around the ERF's centre of mass that holds a given fraction (90% by default) of the
gradient mass.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ._validate import check_choice, check_image_batch, check_positive

__all__ = [
    "effective_receptive_field",
    "erf_mass_curve",
    "erf_radius",
    "erf_support",
    "stage_outputs",
    "object_centres",
    "erf_radii_at",
]

OutputFn = Callable[[nn.Module, torch.Tensor], torch.Tensor]


def _default_output(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    if isinstance(out, dict):  # a model in training mode with auxiliary heads
        out = out["out"]
    return out


def effective_receptive_field(
    model: nn.Module,
    images: torch.Tensor,
    output: Optional[OutputFn] = None,
    position: Optional[Tuple[int, int]] = None,
    reduce: str = "per_channel",
    upsample: bool = True,
    batch_size: int = 16,
) -> torch.Tensor:
    """The ERF of one output position, averaged over ``images``: a ``(H, W)``
    float64 map.

    ``output(model, x)`` returns the ``(B, C, h, w)`` map whose position is analysed
    (default: the model's logits). With ``upsample=True`` a map smaller than the
    input is first resized bilinearly to ``(H, W)`` (as
    :func:`tutorial_lib.train.predict` does before the argmax), so models with
    different output strides are compared at the same input pixel. ``position``
    defaults to the centre ``(h // 2, w // 2)`` of that map.

    ``reduce="sum"`` is Luo et al.'s unit gradient on every channel at once (one
    backward pass: the gradient of ``Σ_c y_c``); ``"per_channel"`` sums the
    magnitudes ``Σ_c |∂y_c/∂x|`` (one pass per channel), which cannot cancel between
    channels — logits are defined only up to a shared constant, so their plain sum
    is an arbitrary direction; ``"predicted"`` takes, per image, the gradient of the
    channel with the largest value at ``position`` (for logits: the class the model
    predicts there), in one backward pass; ``"norm"`` the gradient of the feature
    vector's length ``‖y_p‖`` (one pass; for features after a LayerNorm, whose channels
    sum to a constant, so that ``"sum"`` cancels). The model runs in eval mode (batch-norm
    statistics frozen, so images do not interact); its parameters get no gradients.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(
            f"effective_receptive_field: expected an nn.Module, got {type(model).__name__}"
        )
    check_image_batch(images, "effective_receptive_field images")
    check_choice(
        reduce,
        "effective_receptive_field reduce",
        ("sum", "per_channel", "predicted", "norm"),
    )
    check_positive(batch_size, "effective_receptive_field batch_size")
    output = _default_output if output is None else output
    height, width = images.shape[-2:]
    total = torch.zeros(height, width, dtype=torch.float64)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            for start in range(0, images.shape[0], batch_size):
                x = (
                    images[start : start + batch_size]
                    .detach()
                    .clone()
                    .requires_grad_(True)
                )
                y = output(model, x)
                if not isinstance(y, torch.Tensor) or y.ndim != 4:
                    got = (
                        tuple(y.shape)
                        if isinstance(y, torch.Tensor)
                        else type(y).__name__
                    )
                    raise ValueError(
                        f"effective_receptive_field: expected the output to be a (B, C, h, w) map, got {got}"
                    )
                if upsample and y.shape[-2:] != (height, width):
                    # (B, C, H, W)
                    y = F.interpolate(
                        y,
                        size=(height, width),
                        mode="bilinear",
                        align_corners=False,
                    )
                h, w = y.shape[-2:]
                py, px = (h // 2, w // 2) if position is None else position
                if not (0 <= py < h and 0 <= px < w):
                    raise ValueError(
                        f"effective_receptive_field: expected position inside the {h}x{w} output, "
                        f"got {(py, px)}"
                    )
                centre = y[:, :, py, px]  # (B, C)
                # one pass serves the batch: each output sees only its image
                if reduce == "norm":
                    # the length of the feature vector: no cancellation between
                    # channels (a LayerNorm's outputs sum to a constant)
                    (grad,) = torch.autograd.grad(centre.norm(dim=1).sum(), x)
                    total += grad.abs().sum(dim=1).sum(dim=0).double()  # (H, W)
                elif reduce in ("sum", "predicted"):
                    if reduce == "predicted":
                        best = centre.detach().argmax(1, keepdim=True)
                        centre = centre.gather(1, best)  # (B, 1)
                    (grad,) = torch.autograd.grad(centre.sum(), x)
                    total += grad.abs().sum(dim=1).sum(dim=0).double()  # (H, W)
                else:
                    for c in range(centre.shape[1]):
                        (grad,) = torch.autograd.grad(
                            centre[:, c].sum(),
                            x,
                            retain_graph=c + 1 < centre.shape[1],
                        )
                        total += grad.abs().sum(dim=1).sum(dim=0).double()  # (H, W)
    finally:
        model.train(was_training)
    return total / images.shape[0]


def _check_map(erf: object, name: str) -> torch.Tensor:
    if not isinstance(erf, torch.Tensor) or erf.ndim != 2:
        got = (
            tuple(erf.shape)
            if isinstance(erf, torch.Tensor)
            else type(erf).__name__
        )
        raise ValueError(f"{name}: expected a 2-D (H, W) map, got {got}")
    erf = erf.detach().double()
    if not torch.isfinite(erf).all() or (erf < 0).any():
        raise ValueError(
            f"{name}: expected finite non-negative values (gradient magnitudes)"
        )
    if erf.sum() <= 0:
        raise ValueError(
            f"{name}: expected a map with positive total mass, got all zeros"
        )
    return erf


def erf_mass_curve(
    erf: torch.Tensor, center: Optional[Tuple[float, float]] = None
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Distances of the pixels from ``center`` (sorted) and the fraction of mass
    within each.

    ``center`` is ``(row, column)`` in pixel indices (default: the centre of mass).
    Returns ``(radii, fraction)`` with ``fraction[i]`` = share of the total mass at
    distance ``≤ radii[i]``.
    """
    erf = _check_map(erf, "erf_mass_curve")
    rows, cols = torch.meshgrid(
        torch.arange(erf.shape[0], dtype=torch.float64),
        torch.arange(erf.shape[1], dtype=torch.float64),
        indexing="ij",
    )
    mass = erf / erf.sum()
    if center is None:
        center = (float((mass * rows).sum()), float((mass * cols).sum()))
    dist = torch.sqrt((rows - center[0]) ** 2 + (cols - center[1]) ** 2).flatten()
    order = torch.argsort(dist, stable=True)
    return dist[order], torch.cumsum(mass.flatten()[order], dim=0)


def erf_radius(
    erf: torch.Tensor,
    fraction: float = 0.9,
    center: Optional[Tuple[float, float]] = None,
) -> float:
    """Radius (pixels) of the smallest disc around ``center`` holding ``fraction``
    of the ERF's mass.

    Distances are measured between pixel centres; ``center`` defaults to the centre
    of mass. A map whose mass sits on one pixel has radius 0; an isotropic Gaussian
    of standard deviation ``σ`` has ``σ √(−2 ln(1 − fraction))`` (2.146 σ at 90%),
    up to the pixel grid.
    """
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, (int, float))
        or not 0 < fraction <= 1
    ):
        raise ValueError(
            f"erf_radius: expected fraction in (0, 1], got {fraction!r}"
        )
    radii, cumulative = erf_mass_curve(erf, center)
    index = int(
        torch.searchsorted(
            cumulative, torch.tensor([fraction - 1e-12], dtype=torch.float64)
        )
    )
    return float(radii[min(index, radii.numel() - 1)])


def erf_support(erf: torch.Tensor, threshold: float = 0.0) -> Tuple[int, int]:
    """Height and width of the bounding box of the pixels whose ERF exceeds
    ``threshold``.

    With ``threshold=0`` and weights that cannot cancel, this is the theoretical
    receptive field.
    """
    erf = _check_map(erf, "erf_support")
    rows = torch.nonzero((erf > threshold).any(dim=1)).flatten()
    cols = torch.nonzero((erf > threshold).any(dim=0)).flatten()
    if rows.numel() == 0:
        return 0, 0
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


# ----------------------------------------------------------------------------------------
# Per stage, at object pixels: SegFormer's Fig. 3 analysed, over seeds


def stage_outputs(model: nn.Module) -> Dict[str, OutputFn]:
    """Named output functions of a model's stages, for
    :func:`effective_receptive_field`: SegFormer's four encoder stages and its logits
    (``stage1``–``stage4``, ``logits``); DeepLabV3+'s low-level features (stride 4), its
    backbone output (``backbone``), the ASPP output and its logits. SegFormer's Fig. 3
    compares stage 4 (and the decoder head) with DeepLabV3+'s."""
    from .models.deeplab import DeepLabV3Plus
    from .models.segformer import SegFormer

    if isinstance(model, SegFormer):
        outputs: Dict[str, OutputFn] = {
            f"stage{i + 1}": (lambda m, x, i=i: m.encoder(x)[i])
            for i in range(len(model.encoder.stages))
        }
    elif isinstance(model, DeepLabV3Plus):
        outputs = {
            "low_level": lambda m, x: m.backbone(x)[1],
            "backbone": lambda m, x: m.backbone(x)[0],
            "aspp": lambda m, x: m.aspp(m.backbone(x)[0]),
        }
    else:
        raise ValueError(
            "stage_outputs: expected a SegFormer or DeepLabV3Plus, got "
            f"{type(model).__name__}"
        )
    outputs["logits"] = _default_output
    return outputs


def object_centres(masks: torch.Tensor) -> List[Tuple[int, int]]:
    """For each label map of ``masks`` ``(B, H, W)``, the object pixel (label > 0)
    farthest from every label boundary and from the image's border (chessboard
    distance; the first in raster order among ties): where an ERF "at an object pixel" is measured."""
    from .metrics import boundary_band

    if masks.ndim != 3 or masks.is_floating_point():
        raise ValueError(
            f"object_centres: expected integer label maps (B, H, W), got {masks.dtype} "
            f"of shape {tuple(masks.shape)}"
        )
    centres = []
    for mask in masks:
        # the image's border counts as a boundary: a frame of its own label
        framed = F.pad(mask[None, None].double(), (1, 1, 1, 1), value=-1.0)
        framed = framed[0, 0].long()
        inside = framed > 0
        if not inside.any():
            raise ValueError("object_centres: a label map has no object pixel")
        width = 0
        while True:
            deeper = inside & ~boundary_band(framed, width)
            if not deeper.any():
                break
            inside, width = deeper, width + 1
        row, col = (int(v) - 1 for v in torch.nonzero(inside)[0])
        centres.append((row, col))
    return centres


def erf_radii_at(
    model: nn.Module,
    images: torch.Tensor,
    positions: List[Tuple[int, int]],
    output: Optional[OutputFn] = None,
    fractions: Tuple[float, ...] = (0.5, 0.9),
    reduce: str = "norm",
) -> Dict[float, float]:
    """The mean over ``images`` of each image's ERF radius at its own ``positions``
    entry (input pixels), for each of ``fractions``: ``{0.5: r50, 0.9: r90}``.

    The unit gradient goes on the output cell that contains the pixel, on the output
    map's own grid (no upsampling: a coarse map's cell is not mixed with its
    neighbours), and the radius is measured around the pixel itself, so a field cut
    off by the image border is not moved towards the image's centre."""
    if len(positions) != images.shape[0]:
        raise ValueError(
            f"erf_radii_at: expected one position per image ({images.shape[0]}), got "
            f"{len(positions)}"
        )
    output = _default_output if output is None else output
    height, width = images.shape[-2:]
    with torch.no_grad():
        was_training = model.training
        model.eval()
        h, w = output(model, images[:1]).shape[-2:]
        model.train(was_training)
    sums = {f: 0.0 for f in fractions}
    for i, (py, px) in enumerate(positions):
        cell = (py * h // height, px * w // width)
        erf = effective_receptive_field(
            model,
            images[i : i + 1],
            output,
            position=cell,
            reduce=reduce,
            upsample=False,
        )
        for f in fractions:
            sums[f] += erf_radius(erf, f, center=(float(py), float(px)))
    return {f: s / len(positions) for f, s in sums.items()}
