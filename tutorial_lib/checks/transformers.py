"""Checks for chapters 06–07 (ViT patching and SETR).

* ``check_patch_embed``: a student's ``patch_embed(x, weight, bias, patch_size)`` (patches by
  reshaping, then one matrix product) against :class:`tutorial_lib.layers.patch_embed.PatchEmbed`.
* ``check_multi_head_self_attention``: ``multi_head_self_attention(x, qkv_weight, qkv_bias,
  proj_weight, proj_bias, num_heads)`` against :class:`tutorial_lib.layers.attention.Attention`.
* ``check_pup_head`` and ``check_mla_head``: the student's ``PUPHead`` / ``MLAHead`` classes get
  ``tutorial_lib``'s seeded weights (so submodule names must be the ones the exercise gives) and
  must produce the same eval-mode logits.
"""

from __future__ import annotations

import math
from typing import Any, Dict

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.attention import Attention
from ..layers.patch_embed import PatchEmbed
from ..models.setr import MLAHead as _MLAHead
from ..models.setr import PUPHead as _PUPHead
from ..models.setr import SETRConfig, tokens_to_map
from . import _core
from ._core import Checker, register, same_tensor

__all__ = [
    "check_patch_embed",
    "check_multi_head_self_attention",
    "check_pup_head",
    "check_mla_head",
    "measure_vit_block_macs",
    "check_predict_attention_growth",
    "measure_setr_shapes",
    "check_predict_setr_shapes",
]

_CH06, _CH07 = "chapter 06", "chapter 07"


@register(
    "patch_embed",
    forbid=[
        "tutorial_lib.layers.patch_embed.PatchEmbed",
        "tutorial_lib.layers.patch_embed.patchify",
    ],
    names=["patch_embed"],
    description="patch_embed(x, weight, bias, patch_size): (B, C, H, W) -> (B, N, D)",
)
def check_patch_embed(func: Any) -> None:
    """Compare ``func(x, weight, bias, patch_size)`` with ``PatchEmbed`` (its conv weights).

    Three non-trivial settings, two of them non-square images; the hints recognise patches listed
    column by column, patches flattened as (P, P, C), a missing bias and an output of shape (B, D, N).
    """
    with Checker("patch embedding") as c:
        gen = _core.generator(3)
        for (h, w), p, cin, d in (
            ((32, 32), 16, 3, 8),
            ((24, 40), 8, 3, 12),
            ((12, 8), 4, 2, 5),
        ):
            _core.manual_seed(0)
            ref = PatchEmbed((h, w), p, cin, d)
            x = torch.randn(2, cin, h, w, generator=gen)
            wt, bs = ref.proj.weight.detach(), ref.proj.bias.detach()
            with torch.no_grad():
                want = ref(x)
                try:
                    got = func(x.clone(), wt.clone(), bs.clone(), p)
                except Exception as err:  # noqa: BLE001
                    if c.stub(err, "patch_embed"):
                        return
                    c.true(
                        False, f"{h}x{w} image, P={p}: {_core.student_raised(err)}"
                    )
                    continue
            grid = x.reshape(2, cin, h // p, p, w // p, p)
            variants = [
                (
                    grid.permute(0, 4, 2, 1, 3, 5).reshape(2, -1, cin * p * p)
                    @ wt.reshape(d, -1).T
                    + bs,
                    "the tokens come out column by column: token 1 must be the patch to the right of token 0 "
                    f"(raster order, as in {_CH06}, section 'Build it: patchify, then a linear map')",
                ),
                (
                    grid.permute(0, 2, 4, 3, 5, 1).reshape(2, -1, cin * p * p)
                    @ wt.reshape(d, -1).T
                    + bs,
                    "each patch is flattened channel-last (P, P, C), but weight.reshape(D, -1) lists the "
                    "weights channel-first (C, P, P): the i-th pixel value meets another pixel's weight",
                ),
                (
                    grid.permute(0, 2, 4, 1, 3, 5).reshape(2, -1, cin * p * p)
                    @ wt.reshape(d, -1).T,
                    "the bias is missing (every token is off by the same vector)",
                ),
            ]
            hint = next(
                (says for value, says in variants if same_tensor(got, value)), None
            )
            if (
                hint is None
                and isinstance(got, torch.Tensor)
                and tuple(got.shape) == (2, d, want.shape[1])
            ):
                hint = (
                    "the output is (B, D, N): features and tokens are swapped — tokens are the rows of "
                    "the sequence, (B, N, D)"
                )
            c.close(
                got,
                want,
                f"{h}x{w} image, P={p}, D={d}",
                hint=hint
                or f"the values differ in a way no known slip explains: compare with the Conv2d-equivalence "
                f"cell of {_CH06}, section 'Build it'",
            )


@register(
    "multi_head_self_attention",
    forbid=[
        "tutorial_lib.layers.attention.Attention",
        "tutorial_lib.layers.attention.attention_explicit",
    ],
    names=["multi_head_self_attention"],
    description="multi_head_self_attention(x, qkv_weight, qkv_bias, proj_weight, proj_bias, num_heads)",
)
def check_multi_head_self_attention(func: Any) -> None:
    """Compare the student's explicit multi-head self-attention with ``Attention``.

    The hints recognise a scale of 1/sqrt(D) instead of 1/sqrt(d), a softmax over the queries,
    heads merged without a transpose, heads never split, and a missing output projection.
    """
    with Checker("multi-head self-attention") as c:
        gen = _core.generator(5)
        for b, n, d, heads in (
            (2, 10, 16, 4),
            (1, 17, 24, 3),
            (3, 5, 8, 1),
            (2, 7, 12, 2),
        ):
            _core.manual_seed(1)
            ref = Attention(d, heads).eval()
            x = torch.randn(b, n, d, generator=gen)
            args = (
                x,
                ref.qkv.weight.detach().clone(),
                ref.qkv.bias.detach().clone(),
                ref.proj.weight.detach().clone(),
                ref.proj.bias.detach().clone(),
                heads,
            )
            with torch.no_grad():
                want = ref(x)
                try:
                    got = func(*args)
                except Exception as err:  # noqa: BLE001
                    if c.stub(err, "multi_head_self_attention"):
                        return
                    c.true(
                        False,
                        f"B={b}, N={n}, D={d}, {heads} head(s): {_core.student_raised(err)}",
                    )
                    continue
                q, k, v = (
                    (x @ args[1].T + args[2])
                    .reshape(b, n, 3, heads, d // heads)
                    .permute(2, 0, 3, 1, 4)
                )

                def attend(
                    scale: float,
                    axis: int = -1,
                    merge_t: bool = True,
                    proj: bool = True,
                ):
                    o = (q @ k.transpose(-2, -1) * scale).softmax(axis) @ v
                    o = (
                        o.transpose(1, 2).reshape(b, n, d)
                        if merge_t
                        else o.reshape(b, n, d)
                    )
                    return o @ args[3].T + args[4] if proj else o

                q1, k1, v1 = (x @ args[1].T + args[2]).chunk(3, dim=-1)
                single = (
                    (q1 @ k1.transpose(-2, -1)) / math.sqrt(d // heads)
                ).softmax(-1) @ v1 @ args[3].T + args[4]
                variants = []
                if heads > 1:
                    variants += [
                        (
                            attend(1 / math.sqrt(d)),
                            "the scores are scaled by 1/sqrt(D), the full width: each "
                            f"head's dot products have d = D / heads terms ({_CH06}, section 'The pre-norm block "
                            "and multi-head self-attention')",
                        ),
                        (
                            attend(1 / math.sqrt(d // heads), merge_t=False),
                            "the heads are merged without moving the head axis back next to the features: each "
                            "output token collects pieces of several tokens",
                        ),
                        (
                            single,
                            "one attention over all D features: the heads are never split",
                        ),
                    ]
                variants += [
                    (
                        attend(1 / math.sqrt(d // heads), axis=-2),
                        "the softmax normalises over the queries: each *query's* weights over the keys must sum "
                        f"to one ({_CH06}, section 'Queries, keys and values: a soft lookup')",
                    ),
                    (
                        attend(1 / math.sqrt(d // heads), proj=False),
                        "the output projection is missing",
                    ),
                ]
            hint = next(
                (says for value, says in variants if same_tensor(got, value, 1e-5)),
                None,
            ) or (
                "split qkv into Q, K, V (in that order), then into heads; compare the shapes at each step with "
                f"{_CH06}, section 'The pre-norm block and multi-head self-attention'"
            )
            c.close(got, want, f"B={b}, N={n}, D={d}, {heads} head(s)", hint=hint)


def _load(c: Checker, student: nn.Module, ref: nn.Module, what: str) -> bool:
    own, theirs = ref.state_dict(), student.state_dict()
    missing = sorted(set(own) - set(theirs))
    extra = sorted(set(theirs) - set(own))
    if missing or extra:
        c.true(
            False,
            f"{what}: state dict keys differ from the official names "
            f"(missing {missing[:4]}{'...' if len(missing) > 4 else ''}, unexpected {extra[:4]})",
        )
        return False
    bad = [k for k in own if own[k].shape != theirs[k].shape]
    if bad:
        c.true(
            False,
            f"{what}: parameter shapes differ for {bad[:3]}: expected "
            f"{[tuple(own[k].shape) for k in bad[:3]]}, got {[tuple(theirs[k].shape) for k in bad[:3]]}",
        )
        return False
    student.load_state_dict(own)
    return c.true(True, "")


def _randomise_bn(module: nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(generator=gen)
                m.running_var.uniform_(0.5, 2.0, generator=gen)


@register(
    "pup_head",
    forbid=["tutorial_lib.models.setr_heads.PUPHead"],
    names=["PUPHead"],
    description="PUPHead(embed_dim, channels, num_classes): (B, N, D), grid -> (B, K, 16h, 16w)",
)
def check_pup_head(cls: Any) -> None:
    """Load the library's SETR-PUP head weights (P = 16) into the student's class and compare."""
    with Checker("SETR PUP head") as c:
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            c.true(
                False,
                f"expected an nn.Module subclass named PUPHead, got {type(cls).__name__}",
            )
            return
        gen = _core.generator(7)
        for d, ch, k, grid in ((32, 8, 3, (2, 2)), (24, 16, 5, (3, 2))):
            _core.manual_seed(0)
            ref = _PUPHead(
                SETRConfig(
                    embed_dim=d,
                    head_channels=ch,
                    num_classes=k,
                    patch_size=16,
                    conv_seg=False,
                )
            ).eval()
            _randomise_bn(ref, gen)
            try:
                student = cls(d, ch, k).eval()
            except Exception as err:  # noqa: BLE001
                if not c.stub(err, "PUPHead"):
                    c.true(
                        False,
                        f"PUPHead({d}, {ch}, {k}): {_core.student_raised(err)}",
                    )
                return
            if not _load(c, student, ref, f"PUPHead({d}, {ch}, {k})"):
                return
            x = torch.randn(2, grid[0] * grid[1], d, generator=gen)
            with torch.no_grad():
                want = ref(x, grid)
                try:
                    got = student(x, grid)
                except Exception as err:  # noqa: BLE001
                    c.true(False, f"grid {grid}: {_core.student_raised(err)}")
                    continue
                hint = (
                    f"follow the four conv–BN–ReLU steps and where each 2× upsampling sits in {_CH07}, "
                    f"section 'PUP: progressive upsampling'"
                )
                if (
                    isinstance(got, torch.Tensor)
                    and got.dim() == 4
                    and got.shape[:2] == want.shape[:2]
                    and got.shape[-2:] != want.shape[-2:]
                ):
                    f = got.shape[-2] / grid[0]
                    hint = (
                        f"the output is {f:g}× the token grid, not 16×: PUP upsamples 2× four times in all "
                        f"(three times between the convolutions, once after conv_4)"
                    )
                elif isinstance(got, torch.Tensor):
                    m = tokens_to_map(ref.norm(x), grid)
                    for i in range(4):
                        m = F.relu(
                            getattr(ref, f"bn_{i}")(getattr(ref, f"conv_{i}")(m))
                        )
                        if i < 3:
                            m = F.interpolate(
                                m,
                                scale_factor=2,
                                mode="bilinear",
                                align_corners=True,
                            )
                    ac = F.interpolate(
                        ref.conv_4(m),
                        scale_factor=2,
                        mode="bilinear",
                        align_corners=True,
                    )
                    if same_tensor(got, ac, 1e-5):
                        hint = "the upsampling looks like align_corners=True; the official PUP uses False"
                    elif same_tensor(
                        got,
                        ref(
                            x.reshape(2, grid[1], grid[0], d)
                            .transpose(1, 2)
                            .reshape(2, -1, d),
                            grid,
                        ),
                        1e-5,
                    ):
                        hint = (
                            "the map is built column by column: tokens are in raster order, so reshape "
                            "(B, N, D) → (B, D, h, w) after moving D in front"
                        )
            c.close(got, want, f"grid {grid}", hint=hint)


@register(
    "mla_head",
    forbid=["tutorial_lib.models.setr_mla.MLAHead"],
    names=["MLAHead"],
    description="MLAHead(mla_channels, head_channels, num_classes): 4 maps -> (B, K, 4h, 4w)",
)
def check_mla_head(cls: Any) -> None:
    """Load the library's SETR-MLA head weights into the student's class and compare."""
    with Checker("SETR MLA head") as c:
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            c.true(
                False,
                f"expected an nn.Module subclass named MLAHead, got {type(cls).__name__}",
            )
            return
        gen = _core.generator(9)
        for mla, ch, k, (h, w) in ((16, 8, 3, (3, 3)), (8, 4, 5, (2, 5))):
            _core.manual_seed(0)
            ref = _MLAHead(
                SETRConfig(
                    mla_channels=mla,
                    mlahead_channels=ch,
                    num_classes=k,
                    conv_seg=False,
                )
            ).eval()
            _randomise_bn(ref, gen)
            try:
                student = cls(mla, ch, k).eval()
            except Exception as err:  # noqa: BLE001
                if not c.stub(err, "MLAHead"):
                    c.true(
                        False,
                        f"MLAHead({mla}, {ch}, {k}): {_core.student_raised(err)}",
                    )
                return
            if not _load(c, student, ref, f"MLAHead({mla}, {ch}, {k})"):
                return
            feats = [torch.randn(2, mla, h, w, generator=gen) for _ in range(4)]
            with torch.no_grad():
                want = ref(feats)
                try:
                    got = student(feats)
                except Exception as err:  # noqa: BLE001
                    c.true(False, f"{h}x{w} maps: {_core.student_raised(err)}")
                    continue
                streams = [
                    F.interpolate(
                        getattr(ref, f"head{i + 2}")(f),
                        scale_factor=4,
                        mode="bilinear",
                        align_corners=False,
                    )
                    for i, f in enumerate(feats)
                ]
                wrong = ref.cls(torch.cat(streams, dim=1))
                ordered = [
                    F.interpolate(
                        getattr(ref, f"head{i + 2}")(f),
                        scale_factor=4,
                        mode="bilinear",
                        align_corners=True,
                    )
                    for i, f in enumerate(feats)
                ]
                reversed_cat = ref.cls(torch.cat(ordered[::-1], dim=1))
            hint = (
                f"compare the streams, their upsampling and the concatenation with {_CH07}, section 'MLA: "
                f"multi-level feature aggregation'"
            )
            if (
                isinstance(got, torch.Tensor)
                and got.shape == want.shape
                and torch.allclose(got, wrong, atol=1e-5)
            ):
                hint = (
                    "the upsampling looks like align_corners=False; the official MLA head upsamples each "
                    "stream with align_corners=True (the chapter's 'MLA' section quotes the code)"
                )
            elif same_tensor(got, reversed_cat, 1e-5):
                hint = "the streams are concatenated deepest first: head2's stream (the first map) comes first"
            elif (
                isinstance(got, torch.Tensor)
                and got.dim() == 4
                and got.shape[-2:] != want.shape[-2:]
            ):
                hint = f"the output is {got.shape[-2] / h:g}× the maps' size, not 4×: each stream is upsampled ×4"
            c.close(got, want, f"{h}x{w} maps with {mla} channels", hint=hint)


# -- predict-then-measure -------------------------------------------------------------------------


def measure_vit_block_macs(
    side: int, dim: int = 64, patch: int = 16, heads: int = 4
) -> Dict[str, int]:
    """MACs of one library ViT block (``tutorial_lib.layers.attention``) on a ``side × side`` image cut into
    ``patch``-pixel patches, on the ``meta`` device: ``{"tokens", "attention_products", "linear", "total"}``.
    ``attention_products`` are the two N×N products (QKᵀ and AV), ``linear`` everything else."""
    from ..models.vit import Block
    from ..profiling import count_macs

    n = (side // patch) ** 2
    with torch.device("meta"):
        block = Block(dim, heads)
    count = count_macs(block, torch.empty(1, n, dim, device="meta"))
    total = int(count.total)
    products = sum(
        int(v)
        for k, v in count.by_operator.items()
        if "attention" in k or "matmul" in k or "bmm" in k
    )
    return {
        "tokens": n,
        "attention_products": products,
        "linear": total - products,
        "total": total,
    }


def check_predict_attention_growth(prediction: Any, measured: Any) -> None:
    """Predict-then-measure (chapter 06): the image side doubles from 256 to 512 px (P = 16). By what
    factor grow the attention products' MACs, and the linear layers' MACs?

    ``prediction = {"attention_products": number, "linear": number}``; ``measured`` is
    ``{256: measure_vit_block_macs(256), 512: measure_vit_block_macs(512)}``. Expected: 16 (N quadruples,
    N² grows 16×) and 4 (linear in N).
    """
    with Checker(
        "prediction: how attention and linear costs grow with the image"
    ) as c:
        if not isinstance(prediction, dict) or any(
            _core.unanswered(prediction.get(k))
            for k in ("attention_products", "linear")
        ):
            c.true(
                False,
                "not implemented yet: fill in both predictions before measuring",
            )
            return
        if not (isinstance(measured, dict) and 256 in measured and 512 in measured):
            c.true(
                False,
                "expected {256: ..., 512: ...} from measure_vit_block_macs; rerun that cell",
                credit=False,
            )
            return
        for key, want, wrong in (("attention_products", 16, 4), ("linear", 4, 2)):
            got_factor = measured[512][key] / measured[256][key]
            p = prediction[key]
            hint = (
                f"doubling the side multiplies the token count N by 4; the term is "
                f"{'quadratic' if key != 'linear' else 'linear'} in N ({_CH06}, section 'Sequence length "
                f"and the O(N²) cost')"
            )
            if _core.close_enough(p, wrong, 0.01):
                hint = "you scaled with the side; the cost is counted in tokens, and N grows with the side squared"
            c.true(
                _core.close_enough(p, got_factor, 0.02)
                and _core.close_enough(p, want, 0.02),
                f"{key.replace('_', ' ')}: you predicted ×{p!r}, measured ×{got_factor:g}",
                hint,
            )


def measure_setr_shapes(image: int = 512, patch: int = 16) -> Dict[str, Any]:
    """Token count and the PUP head's output size of a small library SETR-PUP head for an
    ``image × image`` input: ``{"tokens": N, "grid": (h, w), "pup_output": (H, W)}``."""
    grid = (image // patch, image // patch)
    head = _PUPHead(
        SETRConfig(
            embed_dim=16,
            head_channels=8,
            num_classes=3,
            patch_size=patch,
            conv_seg=False,
        )
    ).eval()
    with torch.no_grad():
        out = head(torch.zeros(1, grid[0] * grid[1], 16), grid)
    return {
        "tokens": grid[0] * grid[1],
        "grid": grid,
        "pup_output": tuple(out.shape[-2:]),
    }


def check_predict_setr_shapes(prediction: Any, measured: Any) -> None:
    """Predict-then-measure (chapter 07): for a 512×512 image at P = 16, the number of tokens and the
    size of the PUP head's output.

    ``prediction = {"tokens": int, "pup_output": (H, W)}``; ``measured = measure_setr_shapes(512)``.
    Expected: 1024 tokens and (512, 512): SETR's output stride is the patch size, and PUP undoes it in
    four 2× steps.
    """
    with Checker("prediction: SETR's tokens and PUP's output") as c:
        if not isinstance(prediction, dict) or any(
            _core.unanswered(prediction.get(k)) for k in ("tokens", "pup_output")
        ):
            c.true(
                False,
                "not implemented yet: fill in both predictions before measuring",
            )
            return
        want = measure_setr_shapes(512)
        c.true(
            isinstance(measured, dict) and measured.get("tokens") == want["tokens"],
            f"the measurement gave {measured!r}; rerun the measurement cell unchanged",
            credit=False,
        )
        t = prediction["tokens"]
        hint = "N = (H/P)·(W/P)"
        if _core.exact_int(t) and int(t) == 512 // 16:
            hint = "32 is the tokens along one side; the grid is 32 × 32"
        elif _core.exact_int(t) and int(t) == 32 * 32 + 1:
            hint = "SETR drops the class token (or never adds it) before the decoder: count patch tokens only"
        c.true(
            _core.exact_int(t) and int(t) == want["tokens"],
            f"tokens: you predicted {t!r}, measured {want['tokens']}",
            hint,
        )
        o = prediction["pup_output"]
        o = tuple(o) if isinstance(o, (list, tuple)) else o
        c.true(
            o == want["pup_output"],
            f"PUP output: you predicted {prediction['pup_output']!r}, measured "
            f"{want['pup_output']}",
            f"four 2× steps undo the patch size P = 16 ({_CH07}, section 'PUP: progressive upsampling')",
        )
