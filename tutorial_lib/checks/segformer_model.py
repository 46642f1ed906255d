"""Checks for chapter 11 (SegFormer's All-MLP decoder and the full model).

``check_all_mlp_decoder`` builds the student's ``AllMLPDecoder`` for several stage widths, loads
``tutorial_lib``'s seeded weights into it (so the submodule names and shapes must be the official
ones) and compares the logits in eval mode on seeded feature pyramids, including odd sizes. The
classic mistakes get a hint of their own: concatenating ``[c1, c2, c3, c4]`` instead of the official
``[c4, c3, c2, c1]``, ``align_corners=True``, leaving out the BatchNorm + ReLU of the fuse layer,
and upsampling to the image size instead of the stage-1 (1/4) size.
"""

from __future__ import annotations

from typing import Any, List, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.all_mlp_decoder import AllMLPDecoder as _Reference
from . import _core
from ._core import Checker, register

__all__ = ["check_all_mlp_decoder"]

_CONFIGS = [
    ((8, 16, 24, 32), 16, 5),
    ((32, 64, 160, 256), 32, 7),
    ((6, 10, 14, 18), 12, 3),
]
_SIZES = [(32, 32), (29, 43)]


def _pyramid(
    gen: torch.Generator, dims: Sequence[int], size: Sequence[int], batch: int = 2
) -> List[torch.Tensor]:
    h, w = size
    feats = []
    for i, c in enumerate(dims):
        feats.append(torch.randn(batch, c, h, w, generator=gen))
        h, w = (h + 1) // 2, (w + 1) // 2  # the stride-2 stages round up
    return feats


def _reference(
    dec: _Reference,
    feats: List[torch.Tensor],
    order: str = "c4..c1",
    align_corners: bool = False,
    fuse_norm: bool = True,
    size: Any = None,
) -> torch.Tensor:
    """The decoder's computation with one thing changed, to recognise a mistake."""
    size = tuple(feats[0].shape[-2:]) if size is None else size
    maps = []
    for f, lin in zip(feats, dec.linear_c):
        b, _, h, w = f.shape
        x = lin(f.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(b, -1, h, w)
        maps.append(
            F.interpolate(
                x, size=size, mode="bilinear", align_corners=align_corners
            )
        )
    x = dec.linear_fuse(torch.cat(maps[::-1] if order == "c4..c1" else maps, dim=1))
    x = F.relu(dec.norm(x)) if fuse_norm else x
    return dec.linear_pred(x)


_MISTAKES = [
    (
        dict(order="c1..c4"),
        "the concatenation order looks like [c1, c2, c3, c4]",
        "the official head concatenates [c4, c3, c2, c1] (deepest stage first): torch.cat(maps[::-1], dim=1)",
    ),
    (
        dict(align_corners=True),
        "the upsampling looks like align_corners=True",
        "use F.interpolate(..., mode='bilinear', align_corners=False), as the official code",
    ),
    (
        dict(fuse_norm=False),
        "the fuse layer seems to skip BatchNorm and ReLU",
        "linear_fuse is followed by norm (BatchNorm2d) and ReLU, the official ConvModule",
    ),
]


@register(
    "all_mlp_decoder",
    forbid=[
        "tutorial_lib.layers.all_mlp_decoder.AllMLPDecoder",
        "tutorial_lib.layers.all_mlp_decoder.FoldedAllMLPDecoder",
    ],
    names=["AllMLPDecoder"],
    description="AllMLPDecoder(in_dims, embed_dim, num_classes, dropout=0.1): features -> logits at 1/4",
)
def check_all_mlp_decoder(cls: Any) -> None:
    """Check a student's ``AllMLPDecoder(in_dims, embed_dim, num_classes, dropout=0.1)`` class.

    Its state dict must have the keys and shapes of
    :class:`tutorial_lib.layers.all_mlp_decoder.AllMLPDecoder` (``linear_c.i``, ``linear_fuse``, ``norm``, ``linear_pred``); with the same
    seeded weights its eval-mode logits must match (to 1e-5) on three width settings and two
    pyramid sizes (one odd). Raises ``AssertionError`` (``CheckFailed``) on failure.
    """
    with Checker("All-MLP decoder") as c:
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            c.true(
                False,
                f"expected an nn.Module subclass named AllMLPDecoder, got {type(cls).__name__}",
            )
            return
        gen = _core.generator(11)
        for dims, embed, classes in _CONFIGS:
            _core.manual_seed(0)
            ref = _Reference(dims, embed, classes).eval()
            with torch.no_grad():  # non-trivial BatchNorm statistics
                ref.norm.running_mean.normal_(generator=gen)
                ref.norm.running_var.uniform_(0.5, 2.0, generator=gen)
            try:
                student = cls(dims, embed, classes)
            except Exception as err:
                if c.stub(err, "AllMLPDecoder"):
                    return
                raise
            theirs, ours = student.state_dict(), ref.state_dict()
            want_shapes = {k: tuple(v.shape) for k, v in ours.items()}
            got_shapes = {k: tuple(v.shape) for k, v in theirs.items()}
            if not c.equal(
                got_shapes,
                want_shapes,
                f"in_dims={dims}, embed_dim={embed}: parameter names and shapes",
                "linear_c = ModuleList of nn.Linear(C_i, embed_dim); linear_fuse = Conv2d(4·embed_dim, "
                "embed_dim, 1, bias=False); norm = BatchNorm2d(embed_dim); linear_pred = "
                "Conv2d(embed_dim, num_classes, 1)",
            ):
                continue
            student.load_state_dict(ours)
            student.eval()
            for size in _SIZES:
                feats = _pyramid(gen, dims, size)
                with torch.no_grad():
                    want = ref(feats)
                    got = student([f.clone() for f in feats])
                what = f"in_dims={dims}, stage-1 map {size[0]}×{size[1]}: logits"
                if (
                    isinstance(got, torch.Tensor)
                    and got.shape[-2:] != want.shape[-2:]
                    and got.shape[:2] == want.shape[:2]
                ):
                    c.true(
                        False,
                        f"{what}: expected shape {tuple(want.shape)}, got {tuple(got.shape)}",
                        "upsample every stage to the size of the stage-1 map (1/4 of the image), not further",
                    )
                    continue
                if c.close(
                    got,
                    want,
                    what,
                    atol=1e-5,
                    rtol=1e-4,
                    hint="the names and shapes load, so the wiring differs: follow the four steps of "
                    "chapter 11, section 'The idea' (unify, upsample to 1/4, concatenate and fuse, "
                    "classify)",
                ):
                    continue
                with torch.no_grad():
                    for change, found, hint in _MISTAKES:
                        if torch.allclose(
                            got,
                            _reference(ref, feats, **change),
                            atol=1e-5,
                            rtol=1e-4,
                        ):
                            c.failures[-1] = (
                                c.failures[-1].split(". Hint:")[0]
                                + f" — {found}. Hint: {hint}"
                            )
                            break


# -- predict-then-measure (chapter 11) ------------------------------------------------------------

__all__ += ["measure_decoder_macs", "check_predict_decoder_macs"]


class _Pyramid(nn.Module):
    def __init__(self, decoder: nn.Module) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(
        self, c1: torch.Tensor, c2: torch.Tensor, c3: torch.Tensor, c4: torch.Tensor
    ) -> torch.Tensor:
        return self.decoder([c1, c2, c3, c4])


def measure_decoder_macs(
    image: int = 512,
    dims: Sequence[int] = (32, 64, 160, 256),
    embed_dim: int = 256,
    num_classes: int = 150,
) -> dict:
    """MACs per layer of the library's All-MLP decoder of SegFormer-B0 for an ``image × image`` input
    (stage maps at 1/4 … 1/32), counted on the ``meta`` device: ``{"linear_c", "linear_fuse",
    "linear_pred", "total"}``."""
    from ..profiling import count_macs_meta

    with torch.device("meta"):
        model = _Pyramid(_Reference(dims, embed_dim, num_classes)).eval()
    shapes = [(1, c, image // s, image // s) for c, s in zip(dims, (4, 8, 16, 32))]
    count = count_macs_meta(model, *shapes)
    by = count.by_module
    get = lambda key: sum(int(v) for k, v in by.items() if k == f"decoder.{key}")  # noqa: E731
    return {
        "linear_c": get("linear_c"),
        "linear_fuse": get("linear_fuse"),
        "linear_pred": get("linear_pred"),
        "total": int(count.total),
    }


def check_predict_decoder_macs(prediction: Any, measured: Any) -> None:
    """Predict-then-measure (chapter 11): in SegFormer-B0's decoder at 512×512, which layer costs the most
    MACs (``"linear_c"`` — the four per-stage linears together —, ``"linear_fuse"`` or ``"linear_pred"``),
    and roughly what share of the decoder's MACs (to 10 points)?

    ``prediction = {"largest": name, "share": fraction}``; ``measured = measure_decoder_macs()``. Expected
    reasoning: every layer runs at 1/4 of the image (128×128) except the linear_c of deep stages, and
    linear_fuse maps 4·256 → 256 channels there, 4× the work of the 256 → 256 layers.
    """
    names = ("linear_c", "linear_fuse", "linear_pred")
    with Checker("prediction: where the decoder's MACs go") as c:
        if not isinstance(prediction, dict) or any(
            _core.unanswered(prediction.get(k)) for k in ("largest", "share")
        ):
            c.true(
                False,
                "not implemented yet: fill in both predictions before measuring",
            )
            return
        if not (isinstance(measured, dict) and all(k in measured for k in names)):
            c.true(
                False,
                "expected the dict of checks.measure_decoder_macs(); rerun that cell",
                credit=False,
            )
            return
        largest = max(names, key=lambda k: measured[k])
        share = measured[largest] / measured["total"]
        got = _core.as_choice(prediction["largest"]).replace(" ", "_")
        hint = (
            "count MACs as positions × in-channels × out-channels: which layer has the most channels "
            "at the finest grid? (chapter 11, section 'Where the MACs go — and folding the decoder')"
        )
        if got == "linear_pred":
            hint = "linear_pred maps 256 channels to only 150 classes; another layer has 4·256 inputs"
        c.true(
            got == largest,
            f"largest layer: you predicted {prediction['largest']!r}, measured {largest!r}",
            hint,
        )
        c.true(
            _core.close_enough(prediction["share"], share, 0.0)
            or (
                isinstance(prediction["share"], (int, float))
                and abs(float(prediction["share"]) - share) <= 0.10
            ),
            f"its share: you predicted {prediction['share']!r}, measured {share:.2f}",
            "a fraction of the decoder's total (0 to 1): compare 4·C·C MACs per position at 1/4 of the image "
            "with the C_i·C of each linear_c at its own stage's grid and the C·K of linear_pred",
        )
