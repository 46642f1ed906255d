"""Checks for the SegFormer layer chapters (08-10): patch embedding, efficient attention, Mix-FFN.

Each check builds the student's class and ``tutorial_lib``'s with the same arguments, copies the
reference weights into the student's module (so the parameter names must be the standard ones:
``proj``/``norm``; ``q``/``kv``/``proj``/``sr``/``norm``; ``fc1``/``dwconv``/``fc2``) and compares
outputs on seeded inputs, including sizes that are not multiples of the stride.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .. import probes
from ..layers.efficient_attention import EfficientSelfAttention
from ..layers.mix_ffn import MixFFN
from ..layers.overlap_patch_embed import OverlapPatchEmbed
from . import _core
from ._core import Checker, register, same_tensor

__all__ = [
    "check_overlap_patch_embed",
    "check_efficient_self_attention",
    "check_mix_ffn",
    "measure_stage_sizes",
    "check_predict_stage_sizes",
    "measure_attention_cost",
    "check_predict_attention_cost",
    "mix_ffn_with_padding",
    "position_probe",
    "measure_border_tokens",
    "check_predict_border_tokens",
]

_CH08, _CH09, _CH10 = "chapter 08", "chapter 09", "chapter 10"


def _first_match(
    got: Any, variants: List[Tuple[Callable[[], torch.Tensor], str]]
) -> Optional[str]:
    """The message of the first wrong variant whose output ``got`` reproduces (``None`` if none)."""
    for make, says in variants:
        try:
            with torch.no_grad():
                if same_tensor(got, make(), atol=1e-5):
                    return says
        except Exception:  # noqa: BLE001 - a variant undefined for this case explains nothing
            continue
    return None


def _build(c: Checker, cls: Any, kwargs: Dict[str, Any], ref: nn.Module) -> Any:
    """Instantiate the student's class and load the reference weights; ``None`` on failure."""
    try:
        student = cls(**kwargs)
    except Exception as err:  # report the student's crash and go on
        if not c.stub(err, getattr(cls, "__name__", "the class")):
            c.true(False, f"{cls.__name__}({kwargs}): {_core.student_raised(err)}")
        return None
    if not isinstance(student, nn.Module):
        c.true(
            False, f"expected an nn.Module subclass, got {type(student).__name__}"
        )
        return None
    want = sorted(ref.state_dict())
    got = sorted(student.state_dict())
    if not c.equal(
        got,
        want,
        f"parameter names of {cls.__name__}({kwargs})",
        "use the standard submodule names of the chapter so that released weights load",
    ):
        return None
    student.load_state_dict(ref.state_dict())
    return student.eval()


def _run(c: Checker, what: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as err:
        if not c.stub(err, "forward"):
            c.true(False, f"{what}: {_core.student_raised(err)}")
    return None


def _ope_variants(
    ref: OverlapPatchEmbed, x: torch.Tensor
) -> List[Tuple[Callable[[], torch.Tensor], str]]:
    def conv(padding: int) -> torch.Tensor:
        return F.conv2d(
            x, ref.proj.weight, ref.proj.bias, stride=ref.stride, padding=padding
        )

    y = conv(ref.patch_size // 2)
    b, c = y.shape[:2]
    return [
        (
            lambda: ref.norm(y.reshape(b, -1, c)),
            "the tokens are a (B, C, H·W) map read as (B, N, C) without moving the channel axis: token i mixes "
            f"channels of several positions — see how {_CH08}, section 'Build it', turns the map into tokens",
        ),
        (
            lambda: y.flatten(2).transpose(1, 2),
            "the tokens are not normalised: the patch embedding ends with a LayerNorm over each token's channels",
        ),
        (
            lambda: (
                ref.norm.weight
                * F.layer_norm(y, y.shape[1:]).flatten(2).transpose(1, 2)
                + ref.norm.bias
            ),
            "the normalisation runs over a whole (C, H, W) map instead of over each token's C channels",
        ),
    ]


@register(
    "overlap_patch_embed",
    forbid=["tutorial_lib.layers.overlap_patch_embed.OverlapPatchEmbed"],
    names=["OverlapPatchEmbed"],
    description="OverlapPatchEmbed(in_chans, embed_dim, patch_size, stride): x -> (tokens, H_out, W_out)",
)
def check_overlap_patch_embed(cls: Any) -> None:
    """Check a student's ``OverlapPatchEmbed(in_chans, embed_dim, patch_size, stride)`` class.

    ``forward(x (B, C, H, W))`` must return ``(tokens (B, N, C), H_out, W_out)`` equal to
    :class:`tutorial_lib.layers.overlap_patch_embed.OverlapPatchEmbed` (padding ``K // 2``, LayerNorm on
    tokens) for SegFormer's stage-1 and later-stage settings on even, odd and non-square input sizes.
    The hints recognise a missing padding, a missing transpose, a missing LayerNorm and one over the
    wrong axes.
    """
    cases: List[Tuple[Dict[str, int], Tuple[int, int, int, int]]] = [
        (dict(in_chans=3, embed_dim=8, patch_size=7, stride=4), (2, 3, 32, 32)),
        (dict(in_chans=3, embed_dim=8, patch_size=7, stride=4), (1, 3, 37, 50)),
        (dict(in_chans=8, embed_dim=16, patch_size=3, stride=2), (1, 8, 15, 9)),
        (dict(in_chans=4, embed_dim=6, patch_size=5, stride=3), (1, 4, 11, 13)),
    ]
    with Checker("overlapping patch embedding") as c:
        gen = _core.generator(8)
        for kwargs, shape in cases:
            _core.manual_seed(len(shape) + kwargs["embed_dim"])
            ref = OverlapPatchEmbed(**kwargs).eval()
            # a non-trivial LayerNorm, so that a missing norm is caught
            with torch.no_grad():
                ref.norm.weight.uniform_(0.5, 1.5)
                ref.norm.bias.uniform_(-0.5, 0.5)
            student = _build(c, cls, kwargs, ref)
            if student is None:
                break
            x = torch.randn(*shape, generator=gen)
            what = f"{kwargs} on input {shape}"
            out = _run(c, what, lambda: student(x))
            if out is None:
                continue
            if not (isinstance(out, tuple) and len(out) == 3):
                c.true(
                    False,
                    f"{what}: expected a tuple (tokens, H_out, W_out), got {type(out).__name__}",
                )
                continue
            with torch.no_grad():
                want, h, w = ref(x)
            k, st = kwargs["patch_size"], kwargs["stride"]
            size_hint = f"the output size is floor((H + 2P − K) / S) + 1 ({_CH08}, section 'The output size')"
            if (int(out[1]), int(out[2])) == (
                (shape[2] - k) // st + 1,
                (shape[3] - k) // st + 1,
            ):
                size_hint = (
                    "the size is that of an unpadded convolution: the overlapping embedding pads by "
                    f"K // 2 so that windows centred on the border exist ({_CH08}, 'The output size')"
                )
            elif (int(out[1]), int(out[2])) == (w, h) and h != w:
                size_hint = "(H_out, W_out) come out swapped: the first returned size is the number of rows"
            c.equal(
                (int(out[1]), int(out[2])),
                (h, w),
                f"{what}: (H_out, W_out)",
                size_hint,
            )
            hint = (
                _first_match(out[0], _ope_variants(ref, x))
                or f"compare each step with {_CH08}, section 'Build it' (conv, tokens in row-major order, LayerNorm)"
            )
            c.close(out[0], want, f"{what}: tokens", hint)


def _esa_variant(
    ref: EfficientSelfAttention, x: torch.Tensor, H: int, W: int, mistake: str
) -> torch.Tensor:
    b, n, c = x.shape
    h, d = ref.num_heads, ref.head_dim
    q = ref.q(x).reshape(b, n, h, d).transpose(1, 2)
    src = x
    if ref.sr_ratio > 1 and mistake != "no_reduction":
        if mistake == "no_transpose_sr":
            m = x.reshape(b, c, H, W)
        else:
            m = x.transpose(1, 2).reshape(b, c, H, W)
        src = ref.sr(m).flatten(2).transpose(1, 2)
        if mistake != "no_norm":
            src = ref.norm(src)
    kv = ref.kv(src).reshape(b, -1, 2, h, d).permute(2, 0, 3, 1, 4)
    k_, v_ = (kv[1], kv[0]) if mistake == "v_then_k" else (kv[0], kv[1])
    scale = c**-0.5 if mistake == "scale_dim" else d**-0.5
    out = ((q @ k_.transpose(-2, -1)) * scale).softmax(-1) @ v_
    out = (
        out.reshape(b, n, c)
        if mistake == "no_transpose_merge"
        else out.transpose(1, 2).reshape(b, n, c)
    )
    return ref.proj(out)


_ESA_MISTAKES = [
    (
        "no_transpose_sr",
        "the tokens are reshaped into a (B, C, H, W) map without moving the channel axis "
        "first, so the reduction convolution mixes positions and channels — see the cell of "
        f"{_CH09}, section 'The literal reshape, and which tokens it groups'",
    ),
    (
        "no_norm",
        "the reduced keys and values are not normalised: the reduction is conv *then* LayerNorm",
    ),
    (
        "v_then_k",
        "keys and values are swapped: the kv projection's first half gives the keys",
    ),
    (
        "scale_dim",
        "the scores are scaled by the full width C, not by the width of one head "
        "(this only shows with several heads)",
    ),
    (
        "no_transpose_merge",
        "the heads are merged without moving the head axis back next to the channels: each "
        "output token collects several tokens of one head",
    ),
    (
        "no_reduction",
        "the keys and values come from all N tokens: the sequence reduction is skipped",
    ),
]


@register(
    "efficient_self_attention",
    forbid=[
        "tutorial_lib.layers.efficient_attention.EfficientSelfAttention",
        "tutorial_lib.layers.sequence_reduction.SequenceReductionLiteral",
    ],
    names=["EfficientSelfAttention"],
    description="EfficientSelfAttention(dim, num_heads=1, sr_ratio=1): (x, H, W) -> (B, N, C)",
)
def check_efficient_self_attention(cls: Any) -> None:
    """Check a student's ``EfficientSelfAttention(dim, num_heads=1, sr_ratio=1)`` class.

    Submodules ``q``, ``kv``, ``proj`` and, when ``sr_ratio > 1``, ``sr`` (strided conv) and ``norm``
    (LayerNorm); ``forward(x (B, N, C), H, W)`` must equal
    :class:`tutorial_lib.layers.efficient_attention.EfficientSelfAttention` for one and several heads,
    reduction ratios 1, 2, 4 and non-square grids, one not a multiple of ``sr_ratio``. The hints name
    the mistake the output reproduces (a reshape without transpose, keys and values swapped, the wrong
    scale, no LayerNorm, no reduction).
    """
    cases = [
        (16, 1, 1, 5, 6),
        (16, 1, 4, 8, 8),
        (24, 3, 2, 6, 10),
        (32, 2, 4, 9, 13),
        (16, 2, 2, 4, 6),
    ]
    with Checker("efficient self-attention (sequence reduction)") as c:
        gen = _core.generator(9)
        for dim, heads, sr, H, W in cases:
            _core.manual_seed(dim + heads + sr)
            ref = EfficientSelfAttention(dim, num_heads=heads, sr_ratio=sr).eval()
            if sr > 1:
                with torch.no_grad():
                    ref.norm.weight.uniform_(0.5, 1.5)
                    ref.norm.bias.uniform_(-0.5, 0.5)
            kwargs = dict(dim=dim, num_heads=heads, sr_ratio=sr)
            student = _build(c, cls, kwargs, ref)
            if student is None:
                break
            x = torch.randn(2, H * W, dim, generator=gen)
            what = f"{kwargs} on a {H}×{W} grid"
            out = _run(c, what, lambda: student(x, H, W))
            if out is None:
                continue
            variants = [
                (lambda m=m: _esa_variant(ref, x, H, W, m), says)
                for m, says in _ESA_MISTAKES
            ]
            hint = _first_match(out, variants) or (
                f"the sizes are right but not the values: follow {_CH09}, section 'Build it', step by step "
                f"(which tensor is reduced, how heads are split and merged)"
            )
            with torch.no_grad():
                want = ref(x, H, W)
            c.close(out, want, what, hint)


def _ffn_variant(
    ref: MixFFN, x: torch.Tensor, H: int, W: int, mistake: str
) -> torch.Tensor:
    b, n, _ = x.shape
    hid = ref.hidden_dim
    y = ref.fc1(x)
    if mistake == "gelu_first":
        y = F.gelu(y)
    if mistake in ("no_transpose_in", "no_transpose_both"):
        m = y.reshape(b, hid, H, W)
    elif mistake == "grid_swapped":
        m = y.transpose(1, 2).reshape(b, hid, W, H)
    else:
        m = y.transpose(1, 2).reshape(b, hid, H, W)
    m = ref.dwconv(m)
    y = (
        m.reshape(b, n, hid)
        if mistake == "no_transpose_both"
        else m.flatten(2).transpose(1, 2)
    )
    if mistake != "gelu_first":
        y = F.gelu(y)
    out = ref.fc2(y)
    return out + x if mistake == "residual" else out


_FFN_MISTAKES = [
    (
        "no_transpose_in",
        "a one-hot token's response appears far from it: tokens and map positions are mixed "
        "up on the way into the convolution (a (B, N, C) tensor read as (B, C, H, W) without "
        f"moving the channel axis) — see the cell of {_CH10}, section 'Build it', that writes "
        "the 3×3 sum on the grid",
    ),
    (
        "no_transpose_both",
        "a one-hot token's response appears far from it: tokens and map positions are mixed "
        "up on the way in and out of the convolution (a reshape does not move the channel "
        f"axis) — see the cell of {_CH10}, section 'Build it', that writes the 3×3 sum",
    ),
    (
        "grid_swapped",
        "the grid is read as W rows of H tokens: on a non-square grid each token's neighbours are "
        "the wrong ones (tokens are listed row by row, H rows of W)",
    ),
    (
        "gelu_first",
        "the GELU acts before the depthwise convolution instead of after it (eq. 3 of the paper, "
        f"quoted in {_CH10}, 'The idea')",
    ),
    (
        "residual",
        "the output includes the input: the block adds the residual, this module must not",
    ),
]


def _locality(student: nn.Module, ref: MixFFN, H: int, W: int) -> Optional[str]:
    """What a one-hot token reveals: where the student's module responds to a change of one token."""
    dim = ref.dim
    t = (H // 2) * W + W // 2 - 1 if W > 2 else (H // 2) * W
    x0 = torch.zeros(1, H * W, dim)
    x1 = x0.clone()
    x1[0, t] = 1.0
    try:
        with torch.no_grad():
            diff = (student(x1, H, W) - student(x0, H, W)).norm(dim=-1)[0]
    except Exception:  # noqa: BLE001
        return None
    changed = set((diff > 1e-6).nonzero().flatten().tolist())
    r, col = divmod(t, W)
    near = {
        i * W + j
        for i in range(r - 1, r + 2)
        for j in range(col - 1, col + 2)
        if 0 <= i < H and 0 <= j < W
    }
    if changed and not changed <= near:
        far = sorted(changed - near)[:3]
        return (
            f"a one-hot token at (row {r}, column {col}) changes tokens {far} outside its 3×3 neighbourhood: "
            f"tokens and map positions are mixed up — see the cell of {_CH10}, section 'Build it', that "
            f"writes the 3×3 sum on the grid"
        )
    if changed == {t}:
        return (
            "a one-hot token changes only itself: nothing mixes neighbouring tokens (is the depthwise "
            "convolution applied on the H × W grid?)"
        )
    return None


@register(
    "mix_ffn",
    forbid=["tutorial_lib.layers.mix_ffn.MixFFN"],
    names=["MixFFN"],
    description="MixFFN(dim, hidden_dim): (x, H, W) -> (B, N, C)",
)
def check_mix_ffn(cls: Any) -> None:
    """Check a student's ``MixFFN(dim, hidden_dim)`` class (no residual inside).

    ``fc1`` → 3×3 depthwise ``dwconv`` (padding 1, bias) on the ``H × W`` grid → GELU → ``fc2``; the
    output must equal :class:`tutorial_lib.layers.mix_ffn.MixFFN` on square and non-square grids. When
    the values differ, the check feeds a one-hot token through the student's module and says where its
    response lands (a reshape without transpose moves it far away), or names the mistake the output
    reproduces (H and W swapped, GELU first, the residual added).
    """
    cases = [(8, 32, 4, 4), (16, 64, 5, 7), (12, 24, 9, 3), (6, 12, 2, 6)]
    with Checker("Mix-FFN") as c:
        gen = _core.generator(10)
        for dim, hidden, H, W in cases:
            _core.manual_seed(dim + hidden)
            ref = MixFFN(dim, hidden).eval()
            kwargs = dict(dim=dim, hidden_dim=hidden)
            student = _build(c, cls, kwargs, ref)
            if student is None:
                break
            x = torch.randn(2, H * W, dim, generator=gen)
            what = f"{kwargs} on a {H}×{W} grid"
            out = _run(c, what, lambda: student(x, H, W))
            if out is None:
                continue
            variants = [
                (lambda m=m: _ffn_variant(ref, x, H, W, m), says)
                for m, says in _FFN_MISTAKES
            ]
            hint = (
                _first_match(out, variants)
                or _locality(student, ref, H, W)
                or (
                    f"a one-hot token's response stays in its 3×3 neighbourhood, so the layout is right: compare "
                    f"the order of the steps with {_CH10}, section 'Build it'"
                )
            )
            with torch.no_grad():
                want = ref(x, H, W)
            c.close(out, want, what, hint)


# -- predict-then-measure and the discussion scaffold -------------------------------------------------


def measure_stage_sizes(height: int, width: int) -> List[Tuple[int, int]]:
    """The four MiT stage grids ``(H_i, W_i)`` for an image, measured by running the library's overlapping
    patch embeddings (7/4 then 3/2 three times) on a one-channel-per-stage tensor."""
    x = torch.zeros(1, 1, height, width)
    sizes = []
    for k, s in ((7, 4), (3, 2), (3, 2), (3, 2)):
        with torch.no_grad():
            _, h, w = OverlapPatchEmbed(x.shape[1], 1, k, s)(x)
        sizes.append((h, w))
        x = torch.zeros(1, 1, h, w)
    return sizes


#: the chapter-08 prediction exercise: an odd, non-square image
PREDICT_STAGE_IMAGE = (37, 50)


def check_predict_stage_sizes(prediction: Any, measured: Any) -> None:
    """Predict-then-measure (chapter 08): the four stage grids of MiT for a 37×50 image.

    ``prediction`` is a list of four ``(H_i, W_i)`` pairs written before ``measure_stage_sizes(37, 50)``.
    The reasoning expected: ``H_out = floor((H + 2·(K//2) − K) / S) + 1`` — with padding the sizes round
    *up* (ceil(H/S)), not down as ``H // S`` suggests.
    """
    want = measure_stage_sizes(*PREDICT_STAGE_IMAGE)
    with Checker("prediction: MiT stage sizes of a 37×50 image") as c:
        if _core.unanswered(prediction) or (
            isinstance(prediction, (list, tuple))
            and any(_core.unanswered(p) for p in prediction)
        ):
            c.true(
                False,
                "not implemented yet: write your four (H, W) predictions before measuring",
            )
            return
        c.true(
            [tuple(m) for m in measured] == want
            if isinstance(measured, (list, tuple))
            else False,
            f"the measurement gave {measured!r}; rerun the measurement cell unchanged",
            credit=False,
        )
        try:
            got = [tuple(int(v) for v in p) for p in prediction]
        except (TypeError, ValueError):
            c.true(False, f"expected four (H, W) pairs of ints, got {prediction!r}")
            return
        floor = []
        h, w = PREDICT_STAGE_IMAGE
        for s in (4, 2, 2, 2):
            h, w = h // s, w // s
            floor.append((h, w))
        hint = f"apply the output-size formula stage by stage, each from the previous grid ({_CH08}, 'The output size')"
        if got == floor:
            hint = (
                "you divided and rounded down; with padding K // 2 the windows centred on the last pixels "
                "still count, so the sizes round up"
            )
        elif got[:1] == want[:1]:
            hint = "stage 1 is right: the later stages start from the previous stage's grid, with K=3, S=2"
        c.true(got == want, f"you predicted {got}, measured {want}", hint)


def measure_attention_cost(
    side: int, dim: int = 32, sr_ratios=(1, 2, 4, 8)
) -> Dict[int, int]:
    """MACs of the library's ``EfficientSelfAttention`` on a ``side × side`` grid, counted by tracing the
    module (``profiling.count_macs``), for each reduction ratio."""
    from ..profiling import count_macs

    result = {}
    for sr in sr_ratios:
        layer = EfficientSelfAttention(dim, num_heads=1, sr_ratio=sr).eval()
        x = torch.zeros(1, side * side, dim)
        result[sr] = int(count_macs(_Grid(layer, side), x))
    return result


class _Grid(nn.Module):
    """``layer(x, side, side)`` as a one-input module, for the MAC counter."""

    def __init__(self, layer: nn.Module, side: int) -> None:
        super().__init__()
        self.layer, self.side = layer, side

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x, self.side, self.side)


def check_predict_attention_cost(prediction: Any, measured: Any) -> None:
    """Predict-then-measure (chapter 09): on a 32×32 grid with C = 32, by what factor do the MACs of the
    attention products (``QKᵀ`` and ``AV``) shrink from ``sr_ratio=1`` to ``sr_ratio=8``, and does the whole
    layer's cost shrink by as much?

    ``prediction = {"attention_factor": number, "layer_factor_smaller": bool}``; ``measured`` is
    ``measure_attention_cost(32)``. Expected: 64 (N_r = N / sr²), and True — the linear terms do not shrink,
    so the layer's factor is smaller.
    """
    side, dim = 32, 32
    n = side * side
    with Checker("prediction: what sequence reduction saves") as c:
        if not isinstance(prediction, dict) or any(
            _core.unanswered(prediction.get(k))
            for k in ("attention_factor", "layer_factor_smaller")
        ):
            c.true(
                False,
                "not implemented yet: fill in both predictions before measuring",
            )
            return
        if not (isinstance(measured, dict) and 1 in measured and 8 in measured):
            c.true(
                False,
                "expected the dict of checks.measure_attention_cost(32); rerun that cell",
                credit=False,
            )
            return
        att = lambda sr: 2 * n * (side // sr) ** 2 * dim  # noqa: E731
        factor = att(1) / att(8)
        layer_factor = measured[1] / measured[8]
        p = prediction["attention_factor"]
        hint = "the keys come from an (H/sr) × (W/sr) grid: count N_r"
        if _core.close_enough(p, 8, 0.01):
            hint = "sr shrinks each side of the key grid, so N_r shrinks by sr² (chapter 09, 'R versus sr_ratio')"
        c.true(
            _core.close_enough(p, factor, 0.01),
            f"attention products: you predicted a factor {p!r}, the count "
            f"gives {factor:g}",
            hint,
        )
        c.true(
            bool(prediction["layer_factor_smaller"]) is (layer_factor < factor),
            f"the whole layer shrinks by {layer_factor:.2f}: you predicted that this is "
            f"{'smaller' if prediction['layer_factor_smaller'] else 'not smaller'} than {factor:g}",
            f"q, proj (N·C² each) and the reduction conv do not shrink with sr ({_CH09}, section 'Cost')",
        )


def mix_ffn_with_padding(
    dim: int, hidden_dim: int, padding_mode: str = "zeros"
) -> MixFFN:
    """The library's :class:`~tutorial_lib.layers.mix_ffn.MixFFN` with its depthwise
    convolution padding ``"zeros"`` (the paper's), ``"circular"``, ``"reflect"`` or
    ``"replicate"`` — for the circular-padding exercise of chapter 10, so that the
    probe uses the library's class even where a student's ``MixFFN`` shadows the
    name."""
    if padding_mode not in ("zeros", "circular", "reflect", "replicate"):
        raise ValueError(
            f"mix_ffn_with_padding: expected padding_mode zeros, circular, reflect or "
            f"replicate, got {padding_mode!r}"
        )
    return MixFFN(dim, hidden_dim, padding_mode=padding_mode)


def position_probe(
    padding_mode: str = "zeros",
    depth: int = 4,
    side: int = 16,
    dim: int = 64,
    seed: int = 0,
) -> Dict[str, float]:
    """Chapter 10's probe (:mod:`tutorial_lib.probes`, in float64) with the library's
    Mix-FFN padded by ``padding_mode``: a constant ``side × side`` token map through
    ``depth`` residual blocks ``x + MixFFN(LN(x))`` (weights seeded by ``seed``).

    Returns ``{"distinct": number of distinct token vectors
    (:func:`~tutorial_lib.probes.distinct_tokens`, to 1e-12), "r2": held-out R² of
    the ridge probe of (row, column) (:func:`~tutorial_lib.probes.position_r2`)}``.
    The defaults are the chapter's: after 4 blocks of a 16 × 16 map, zero padding
    gives (2·4 + 1)² = 81 kinds of position.
    """
    feats = probes.stack_features(
        depth, side, dim, padding_mode=padding_mode, seed=seed
    )
    return {
        "distinct": float(probes.distinct_tokens(feats)),
        "r2": probes.position_r2(feats, side),
    }


def measure_border_tokens(
    H: int, W: int, padding_mode: str = "zeros", dim: int = 8
) -> int:
    """How many tokens of a *constant* ``H × W`` token map come out of one library Mix-FFN different from
    the centre token (to 1e-6): the tokens that see the padding."""
    torch.manual_seed(0)
    layer = mix_ffn_with_padding(dim, 4 * dim, padding_mode).eval()
    x = torch.randn(1, 1, dim).expand(1, H * W, dim).clone()
    with torch.no_grad():
        y = layer(x, H, W)[0]
    centre = y[(H // 2) * W + W // 2]
    return int(((y - centre).abs().max(dim=1).values > 1e-6).sum())


#: the chapter-10 prediction exercise: a 6×9 constant token map
PREDICT_BORDER_GRID = (6, 9)


def check_predict_border_tokens(prediction: Any, measured: Any) -> None:
    """Predict-then-measure (chapter 10): how many tokens of a constant 6×9 map differ from the centre
    token after one Mix-FFN, with zero padding and with circular padding.

    ``prediction = {"zeros": int, "circular": int}``; ``measured`` the same from ``measure_border_tokens``.
    Expected: the ring of border tokens, 2H + 2W − 4 = 26, and 0 with circular padding (every token sees
    a full neighbourhood of identical tokens).
    """
    H, W = PREDICT_BORDER_GRID
    want = {"zeros": 2 * H + 2 * W - 4, "circular": 0}
    with Checker("prediction: which tokens see the padding") as c:
        if not isinstance(prediction, dict) or any(
            _core.unanswered(prediction.get(k)) for k in want
        ):
            c.true(
                False,
                "not implemented yet: fill in both predictions before measuring",
            )
            return
        c.true(
            isinstance(measured, dict)
            and {k: measured.get(k) for k in want} == want,
            f"the measurement gave {measured!r}; rerun the measurement cell unchanged",
            credit=False,
        )
        p = prediction["zeros"]
        hint = "a token differs when its 3×3 window reaches outside the grid: count the ring of border tokens"
        if _core.exact_int(p) and int(p) == 2 * H + 2 * W:
            hint = (
                "the four corners belong to two edges each: do not count them twice"
            )
        elif _core.exact_int(p) and int(p) == H * W - (H - 2) * (W - 2) - 4:
            hint = "the corners see the padding too"
        elif _core.exact_int(p) and int(p) == 0:
            hint = f"zero padding is not a neighbour like the others: the border tokens see zeros ({_CH10})"
        c.true(
            _core.exact_int(p) and int(p) == want["zeros"],
            f"zero padding: you predicted {p!r}, measured {want['zeros']}",
            hint,
        )
        q = prediction["circular"]
        c.true(
            _core.exact_int(q) and int(q) == 0,
            f"circular padding: you predicted {q!r}, measured 0",
            "with circular padding a border token's window wraps around to tokens that are identical to "
            "its own: nothing marks the border",
        )
