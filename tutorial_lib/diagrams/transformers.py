"""Diagrams of ViT, SETR and SegFormer (chapters 06–11), labelled with traced shapes.

Each function builds the library's model on the ``meta`` device (no memory, no arithmetic),
runs it once with forward hooks (:func:`tutorial_lib.diagrams.trace`) and writes each traced shape on its box.
``Diagram.labels`` maps module names to those labels; ``tests/test_diagrams.py`` checks them
against :func:`tutorial_lib.profiling.shape_trace` of the same module.
"""

from __future__ import annotations

from typing import Dict, Optional

import torch

from ._draw import Canvas, Diagram, fmt_shape, trace

__all__ = [
    "vit_pipeline",
    "setr_decoders",
    "segformer_overview",
    "efficient_attention",
    "mix_ffn",
    "all_mlp_decoder",
]


def _meta(factory, **kwargs):
    with torch.device("meta"):
        return factory(**kwargs).eval()


def _row(c: Canvas, y: float, xs, boxes, h: float = 0.62, w: float = 0.84) -> None:
    """Boxes ``(kind, title, label[, width])`` at ``xs`` on one row, joined by arrows."""
    prev, w0 = None, w
    for x, item in zip(xs, boxes):
        kind, title, label = item[:3]
        w = item[3] if len(item) > 3 else w0
        if kind in ("up", "down"):
            bb = c.resample(x, y, w, h, kind == "up", title, label)
        elif kind == "merge":
            bb = c.merge(x, y, title)
        else:
            bb = c.box(x, y, w, h, kind, title, label)
        if prev is not None:
            c.arrow([(prev[2], y), (bb[0], y)])
        prev = bb


def vit_pipeline(
    model: Optional[torch.nn.Module] = None, img_size: int = 224
) -> Diagram:
    """ViT (Dosovitskiy et al., 2021, Fig. 1): patchify → linear → +[cls] → +pos → L blocks → head.

    ``model``: a :class:`~tutorial_lib.models.vit.VisionTransformer` (default ViT-B/16 on ``meta``).
    The lower row opens one block: ``x + MSA(LN(x))``, then ``x + MLP(LN(x))`` (eqs. 2–3).
    """
    from ..models import vit_base_patch16_224

    m = model if model is not None else _meta(vit_base_patch16_224)
    dev = next(m.parameters()).device
    L = len(m.blocks)
    last = f"blocks.{L - 1}"
    names = [
        "patch_embed.proj",
        "patch_embed",
        "pos_drop",
        last,
        "norm",
        "head",
        "blocks.0.norm1",
        "blocks.0.attn",
        "blocks.0.mlp.fc1",
        "blocks.0.mlp",
        "blocks.0",
    ]
    out, _ = trace(
        m,
        [torch.zeros(1, m.config.in_chans, img_size, img_size, device=dev)],
        names,
    )
    lab = {n: fmt_shape(out[n]) for n in names}
    c = Canvas(7.0, 3.15)
    xs = [0.5 + 1.0 * i for i in range(7)]
    _row(
        c,
        2.5,
        xs,
        [
            ("tensor", "image", f"{m.config.in_chans}×{img_size}×{img_size}"),
            ("conv", "patchify\n+ linear", lab["patch_embed.proj"]),
            ("tokens", "flatten", lab["patch_embed"]),
            ("tokens", "+[cls]\n+ pos", lab["pos_drop"]),
            ("attention", f"{L} × block", lab[last]),
            ("norm", "LayerNorm", lab["norm"]),
            ("linear", "head\non [cls]", lab["head"]),
        ],
        w=0.86,
        h=0.72,
    )
    c.text(
        3.5,
        3.0,
        f"patches P×P = {m.config.patch_size}×{m.config.patch_size}: N = (H/P)·(W/P) tokens, +1 class token",
        8,
        color="#444444",
    )
    # one block, opened
    c.group(0.1, 0.5, 6.9, 1.75, "inside one block (pre-norm, residual)", "block")
    y = 1.05
    xs = [0.6, 1.55, 2.5, 3.25, 4.0, 4.95, 5.9, 6.55]
    _row(
        c,
        y,
        xs,
        [
            ("tensor", "x", lab["pos_drop"]),
            ("norm", "LN", lab["blocks.0.norm1"]),
            ("attention", "MSA", lab["blocks.0.attn"]),
            ("merge", "+", None),
            ("norm", "LN", lab["blocks.0.norm1"]),
            ("linear", "MLP fc1", lab["blocks.0.mlp.fc1"]),
            ("linear", "fc2", lab["blocks.0.mlp"]),
            ("merge", "+", None),
        ],
        w=0.8,
        h=0.6,
    )
    for x0, x1 in ((0.6, 3.25), (3.25, 6.55)):  # residual paths
        c.arrow(
            [
                (x0 + (0.4 if x0 < 1 else 0.0), y + 0.3 if x0 < 1 else y + 0.11),
                (x0 + (0.4 if x0 < 1 else 0), 1.5),
                (x1, 1.5),
                (x1, y + 0.11),
            ]
        )
    c.text(6.55, 0.7, lab["blocks.0"], 8, family="DejaVu Sans Mono")
    c.legend(0.2, note=f"shapes: C×H×W or N×C (batch omitted); L = {L}")
    return c.done(lab, out)


def setr_decoders(
    size: str = "large", img_size: int = 512, num_classes: int = 150
) -> Diagram:
    """SETR (Zheng et al., 2021, Fig. 1): one ViT encoder, three decoders — Naive, PUP, MLA.

    Each decoder row is traced from its own model (``setr_naive``/``setr_pup``/``setr_mla`` of
    the given ``size`` on ``meta``); the encoder row from ``setr_naive``'s encoder.
    """
    from ..models import setr_mla, setr_naive, setr_pup

    x = torch.zeros(1, 3, img_size, img_size, device="meta")
    kw = dict(size=size, img_size=img_size, num_classes=num_classes, aux=False)
    naive, pup, mla = (_meta(f, **kw) for f in (setr_naive, setr_pup, setr_mla))
    L = len(naive.encoder.blocks)
    taps = list(mla.config.mla_indices)
    enc_names = [
        "encoder.patch_embed",
        "encoder.pos_drop",
        f"encoder.blocks.{L - 1}",
    ]
    o_n, i_n = trace(
        naive, [x], enc_names + ["decode_head.conv_0", "decode_head.conv_1", ""]
    )
    # the tokens as a map, as the head's first conv sees them
    zmap = fmt_shape(i_n["decode_head.conv_0"])
    o_p, _ = trace(pup, [x], [f"decode_head.conv_{i}" for i in range(5)] + [""])
    o_m, i_m = trace(
        mla,
        [x],
        ["neck.proj.0", "neck.smooth.0", "decode_head.head2", "decode_head.cls"],
    )
    lab: Dict[str, str] = {}
    for prefix, o in (("naive:", o_n), ("pup:", o_p), ("mla:", o_m)):
        lab.update({prefix + k: fmt_shape(v) for k, v in o.items()})
    c = Canvas(7.0, 5.1)
    # encoder
    c.group(0.1, 3.95, 6.9, 5.0, "encoder: ViT, " + f"{L} blocks", "encoder")
    _row(
        c,
        4.38,
        [0.55, 1.6, 2.75, 4.0, 5.3, 6.35],
        [
            ("tensor", "image", f"3×{img_size}×{img_size}"),
            ("conv", "patch embed\n16×16", lab["naive:encoder.patch_embed"]),
            ("tokens", "+[cls] + pos", lab["naive:encoder.pos_drop"]),
            ("attention", f"{L} blocks", lab[f"naive:encoder.blocks.{L - 1}"]),
            ("tokens", "drop [cls],\nto a map", zmap),
            ("tensor", "$Z^{L}$", "→ decoder"),
        ],
        w=0.92,
        h=0.66,
    )
    # naive
    y = 3.2
    c.group(0.1, 2.8, 6.9, 3.85, "(a) Naive", "decoder")
    _row(
        c,
        y,
        [1.3, 2.6, 3.9, 5.2, 6.3],
        [
            ("tensor", "$Z^{L}$", zmap),
            ("conv", "1×1 conv\n+BN+ReLU", lab["naive:decode_head.conv_0"]),
            ("conv", "1×1 conv", lab["naive:decode_head.conv_1"]),
            ("up", "bilinear ↑16", None),
            ("tensor", "logits", lab["naive:"]),
        ],
        w=0.95,
        h=0.6,
    )
    # PUP
    y = 2.05
    c.group(0.1, 1.65, 6.9, 2.7, "(b) PUP: progressive upsampling", "decoder")
    _row(
        c,
        y,
        [0.6, 1.57, 2.54, 3.51, 4.48, 5.45, 6.42],
        [
            ("tensor", "$Z^{L}$", zmap),
            ("conv", "conv ↑2", lab["pup:decode_head.conv_0"].replace("×", "×", 1)),
            ("conv", "conv ↑2", lab["pup:decode_head.conv_1"]),
            ("conv", "conv ↑2", lab["pup:decode_head.conv_2"]),
            ("conv", "conv", lab["pup:decode_head.conv_3"]),
            ("conv", "1×1 ↑2", lab["pup:decode_head.conv_4"]),
            ("tensor", "logits", lab["pup:"]),
        ],
        w=0.9,
        h=0.6,
    )
    # MLA
    y = 0.9
    c.group(
        0.1,
        0.42,
        6.9,
        1.55,
        f"(c) MLA: multi-level, from blocks {', '.join(str(t + 1) for t in taps)}",
        "decoder",
    )
    _row(
        c,
        y,
        [0.85, 1.85, 2.85, 3.85, 4.75, 5.5, 6.35],
        [
            ("tensor", "4 × $Z^{l}$", fmt_shape(i_m["neck.proj.0"])),
            ("conv", "1×1 conv", lab["mla:neck.proj.0"]),
            ("merge", "+", None),
            ("conv", "3×3 conv", lab["mla:neck.smooth.0"]),
            ("conv", "2 conv 3×3\n↑4 (after)", lab["mla:decode_head.head2"]),
            ("merge", "C", None),
            ("conv", "3×3 conv\n→ logits, ↑4", lab["mla:decode_head.cls"]),
        ],
        w=0.88,
        h=0.6,
    )
    c.text(2.85, 0.62, "top-down sum", 8, color="#444444")
    c.legend(0.17, note="batch omitted; h = H/16")
    return c.done(
        lab,
        {
            **{"naive:" + k: v for k, v in o_n.items()},
            **{"pup:" + k: v for k, v in o_p.items()},
            **{"mla:" + k: v for k, v in o_m.items()},
        },
    )


def _segformer(variant: str, img_size: int, num_classes: int = 150):
    from .. import models

    m = _meta(getattr(models, f"segformer_{variant}"), num_classes=num_classes)
    return m, torch.zeros(1, 3, img_size, img_size, device="meta")


def segformer_overview(
    variant: str = "b0", img_size: int = 512, num_classes: int = 150
) -> Diagram:
    """SegFormer (Xie et al., 2021, Fig. 2): the four-stage Mix Transformer and the All-MLP decoder."""
    m, x = _segformer(variant, img_size, num_classes)
    cfg = m.config
    names = (
        [f"encoder.stages.{i}" for i in range(4)]
        + [f"decode_head.linear_c.{i}" for i in range(4)]
        + ["decode_head.linear_fuse", "decode_head.linear_pred", ""]
    )
    out, ins = trace(m, [x], names)
    lab = {n: fmt_shape(out[n]) for n in names}
    lab["concat"] = fmt_shape(ins["decode_head.linear_fuse"])
    c = Canvas(7.0, 4.75)
    xs = [1.75, 3.0, 4.25, 5.5]
    c.group(
        0.1,
        3.08,
        6.9,
        4.65,
        f"encoder: Mix Transformer (MiT-{variant.upper()})",
        "encoder",
    )
    _row(
        c,
        3.8,
        [0.62] + xs,
        [("tensor", "image", f"3×{img_size}×{img_size}", 0.9)]
        + [
            (
                "attention",
                f"stage {i + 1}\npatch {cfg.patch_sizes[i]}×{cfg.patch_sizes[i]} s{cfg.strides[i]}\n"
                f"{cfg.depths[i]} × block",
                lab[f"encoder.stages.{i}"],
            )
            for i in range(4)
        ],
        w=1.1,
        h=0.88,
    )
    c.text(
        6.8,
        4.51,
        "block = efficient self-attention + Mix-FFN; "
        f"sr = {', '.join(str(r) for r in cfg.sr_ratios)}",
        8,
        color="#444444",
        ha="right",
    )
    c.group(0.1, 0.45, 6.9, 2.98, "decoder: All-MLP", "decoder")
    s1 = out["encoder.stages.0"][-1]
    for i, xx in enumerate(xs):
        c.arrow([(xx, 3.36), (xx, 2.8)])
        c.box(
            xx,
            2.5,
            1.05,
            0.6,
            "linear",
            f"MLP {cfg.embed_dims[i]}→{cfg.decoder_dim}",
            lab[f"decode_head.linear_c.{i}"],
        )
        c.arrow([(xx, 2.2), (xx, 2.0)])
        factor = s1 // out[f"encoder.stages.{i}"][-1]
        c.resample(
            xx,
            1.75,
            0.8,
            0.5,
            True,
            f"↑{factor}" if factor > 1 else "×1",
            vertical=True,
        )
        c.ax.plot([xx, xx], [1.5, 1.32], color="#333333", lw=1.0)
    c.ax.plot([xs[-1], 0.6], [1.32, 1.32], color="#333333", lw=1.0)
    c.arrow([(0.6, 1.32), (0.6, 0.96)])
    _row(
        c,
        0.85,
        [0.6, 2.0, 3.55, 5.1, 6.3],
        [
            ("merge", "C", None),
            ("linear", "1×1 conv\n+BN+ReLU", lab["decode_head.linear_fuse"]),
            ("linear", "MLP predict", lab["decode_head.linear_pred"]),
            ("up", "↑4 (outside)", None),
            ("tensor", "mask", f"{num_classes}×{img_size}×{img_size}"),
        ],
        w=1.05,
        h=0.6,
    )
    c.text(0.6, 0.6, lab["concat"], 8, family="DejaVu Sans Mono")
    c.legend(0.2, note="batch omitted")
    return c.done(lab, out)


def efficient_attention(
    variant: str = "b0", stage: int = 0, img_size: int = 512
) -> Diagram:
    """Efficient self-attention (SegFormer §3.1): keys and values from a grid shrunk sr× per side.

    Traced inside block 0 of ``stage`` of ``segformer_<variant>`` at ``img_size``.
    """
    m, x = _segformer(variant, img_size)
    p = f"encoder.stages.{stage}.blocks.0.attn"
    sr = m.config.sr_ratios[stage]
    names = [p, p + ".q", p + ".kv", p + ".proj"] + (
        [p + ".sr", p + ".norm"] if sr > 1 else []
    )
    out, ins = trace(m, [x], names)
    lab = {n: fmt_shape(out[n]) for n in names}
    n, cdim = ins[p][1:]
    nr = out[p + ".kv"][1]
    lab["weights"] = f"{n}×{nr}"
    c = Canvas(7.0, 3.0)
    _row(
        c,
        2.25,
        [0.55, 1.75, 3.55, 5.15, 6.35],
        [
            ("tensor", "x", fmt_shape(ins[p])),
            ("linear", "$Q = x W_Q$", lab[p + ".q"]),
            (
                "attention",
                "softmax$(QK^T/\\sqrt{d})\\,V$",
                lab["weights"],
                1.6,
            ),
            ("linear", "out proj", lab[p + ".proj"]),
            ("tensor", "output", lab[p]),
        ],
        w=0.9,
        h=0.66,
    )
    side = int(round(n**0.5))
    if sr > 1:
        bottom = [
            ("tokens", "to a map", f"{cdim}×{side}×{side}"),
            ("conv", f"sr: conv {sr}×{sr}\nstride {sr}", lab[p + ".sr"]),
            ("norm", "flatten + LN", lab[p + ".norm"]),
            ("linear", "$K, V = x_r W$", lab[p + ".kv"]),
        ]
    else:
        bottom = [("linear", "$K, V = x W$", lab[p + ".kv"])]
    bx = [1.45, 2.45, 3.45, 4.45][-len(bottom) :]
    _row(c, 1.05, bx, bottom, w=0.9, h=0.66)
    c.arrow([(0.55, 1.92), (0.55, 1.05), (bx[0] - 0.45, 1.05)])
    c.arrow([(4.15, 1.38), (4.15, 1.92)], "K, V", offset=(0.25, 0), mono=False)
    c.text(
        3.5,
        2.8,
        f"N = {n} queries, N/sr² = {nr} keys and values (sr = {sr}): the score matrix is "
        f"{n}×{nr}",
        8,
        color="#444444",
    )
    c.legend(0.2, note="batch and heads omitted")
    return c.done(lab, out)


def mix_ffn(variant: str = "b0", stage: int = 0, img_size: int = 512) -> Diagram:
    """Mix-FFN (SegFormer §3.1, eq. 3): ``MLP(GELU(Conv3×3(MLP(x)))) + x``, traced in block 0 of ``stage``."""
    m, x = _segformer(variant, img_size)
    p = f"encoder.stages.{stage}.blocks.0.mlp"
    names = [p, p + ".fc1", p + ".dwconv", p + ".act", p + ".fc2"]
    out, ins = trace(m, [x], names)
    lab = {n: fmt_shape(out[n]) for n in names}
    c = Canvas(7.0, 1.75)
    _row(
        c,
        1.05,
        [0.5 + 1.0 * i for i in range(7)],
        [
            ("tensor", "x", fmt_shape(ins[p])),
            ("linear", "MLP fc1", lab[p + ".fc1"]),
            ("tokens", "to a map", fmt_shape(ins[p + ".dwconv"])),
            ("conv", "depthwise\n3×3 conv", lab[p + ".dwconv"]),
            ("tokens", "flatten", fmt_shape(ins[p + ".act"])),
            ("norm", "GELU", lab[p + ".act"]),
            ("linear", "MLP fc2", lab[p + ".fc2"]),
        ],
        w=0.86,
        h=0.68,
    )
    c.legend(
        0.2,
        note="+ x (residual, in the block); batch omitted",
        kinds=["tensor", "conv", "linear", "tokens"],
    )
    return c.done(lab, out)


def all_mlp_decoder(
    variant: str = "b0", img_size: int = 512, num_classes: int = 150
) -> Diagram:
    """The All-MLP decoder's four steps (SegFormer §3.2, eq. 4), traced in ``segformer_<variant>``."""
    m, x = _segformer(variant, img_size, num_classes)
    d = "decode_head"
    names = (
        [f"encoder.stages.{i}" for i in range(4)]
        + [f"{d}.linear_c.{i}" for i in range(4)]
        + [f"{d}.linear_fuse", f"{d}.linear_pred"]
    )
    out, ins = trace(m, [x], names)
    lab = {n: fmt_shape(out[n]) for n in names}
    lab["concat"] = fmt_shape(ins[f"{d}.linear_fuse"])
    cdim, s1 = m.config.decoder_dim, out["encoder.stages.0"][-1]
    c = Canvas(7.0, 3.9)
    for x_, t in (
        (1.75, "① MLP: Cᵢ → C"),
        (2.95, "② upsample"),
        (4.35, "③ concat + MLP"),
        (5.85, "④ MLP"),
    ):
        c.text(x_, 3.65, t, 8.5, weight="bold")
    ys = [3.05, 2.35, 1.65, 0.95]
    for i, y in enumerate(ys):
        c.box(0.6, y, 0.95, 0.56, "tensor", f"F{i + 1}", lab[f"encoder.stages.{i}"])
        c.arrow([(1.08, y), (1.3, y)])
        c.box(1.75, y, 0.9, 0.56, "linear", "MLP", lab[f"{d}.linear_c.{i}"])
        c.arrow([(2.2, y), (2.6, y)])
        f = s1 // out[f"encoder.stages.{i}"][-1]
        c.resample(2.95, y, 0.7, 0.5, True, f"↑{f}" if f > 1 else "×1")
        c.arrow(
            [(3.3, y), (3.55, y), (3.55, 2.0), (3.67, 2.0)]
            if y != 2.0
            else [(3.3, y), (3.67, y)]
        )
    c.merge(3.78, 2.0, "C")
    c.text(
        3.78,
        0.55,
        f"each {cdim}×{s1}×{s1} → {lab['concat']}",
        8,
        family="DejaVu Sans Mono",
    )
    c.arrow([(3.89, 2.0), (4.3, 2.0)])
    c.box(
        4.75,
        2.0,
        0.9,
        0.66,
        "linear",
        "1×1 conv\n+BN+ReLU",
        lab[f"{d}.linear_fuse"],
    )
    c.arrow([(5.2, 2.0), (5.4, 2.0)])
    c.box(5.85, 2.0, 0.9, 0.66, "linear", "MLP\npredict", lab[f"{d}.linear_pred"])
    c.text(5.85, 1.45, "mask at H/4", 8, color="#444444")
    c.legend(0.2, note="batch omitted")
    return c.done(lab, out)
