"""Diagrams of SegFormer (chapters 08–11): the overview, the overlapping patch
embedding, efficient self-attention, Mix-FFN and the All-MLP decoder.

Each function builds the library's model on the ``meta`` device, runs it once with
forward hooks (:func:`tutorial_lib.diagrams.trace`) and writes each traced shape on its
box; ``tests/test_diagrams.py`` checks the labels against
:func:`tutorial_lib.profiling.shape_trace`.
"""

from __future__ import annotations

import torch

from ._draw import Canvas, Diagram, fmt_shape, on_meta, row, trace

__all__ = [
    "segformer_overview",
    "overlap_patch_embed",
    "efficient_attention",
    "mix_ffn",
    "all_mlp_decoder",
]


def _segformer(variant: str, img_size: int, num_classes: int = 150):
    from .. import models

    m = on_meta(getattr(models, f"segformer_{variant}"), num_classes=num_classes)
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
    row(
        c,
        3.8,
        [0.62] + xs,
        [("tensor", "image", f"3×{img_size}×{img_size}", 0.9)]
        + [
            (
                "attention",
                f"stage {i + 1}\npatch {cfg.patch_sizes[i]}×{cfg.patch_sizes[i]} "
                f"s{cfg.strides[i]}\n"
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
    row(
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
    lab["weights"] = f"{n}×{nr}"  # the score matrix, named in the note line
    lab["attended"] = f"{n}×{cdim}"  # what the attention box puts out
    c = Canvas(7.0, 3.0)
    row(
        c,
        2.25,
        [0.55, 1.75, 3.55, 5.15, 6.35],
        [
            ("tensor", "x", fmt_shape(ins[p])),
            ("linear", "$Q = x W_Q$", lab[p + ".q"]),
            (
                "attention",
                "softmax$(QK^T/\\sqrt{d})\\,V$",
                lab["attended"],
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
    row(c, 1.05, bx, bottom, w=0.9, h=0.66)
    c.arrow([(0.55, 1.92), (0.55, 1.05), (bx[0] - 0.45, 1.05)])
    c.arrow([(4.15, 1.38), (4.15, 1.92)], "K, V", offset=(0.25, 0), mono=False)
    c.text(
        3.5,
        2.8,
        f"N = {n} queries, N/sr² = {nr} keys and values (sr = {sr}): the score "
        "matrix is "
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
    row(
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


def overlap_patch_embed(
    variant: str = "b0", stage: int = 0, img_size: int = 512
) -> Diagram:
    """SegFormer's overlapping patch embedding (§3.1): a K×K conv with stride S < K, flatten, LN."""
    m, x = _segformer(variant, img_size)
    p = f"encoder.stages.{stage}.patch_embed"
    names = [p + ".proj", p + ".norm"]
    out, ins = trace(m, [x], names)
    lab = {n: fmt_shape(out[n]) for n in names}
    k, s = m.config.patch_sizes[stage], m.config.strides[stage]
    h = out[p + ".proj"][-2:]
    c = Canvas(7.0, 1.75)
    row(
        c,
        1.05,
        [0.6, 1.9, 3.2, 4.45, 5.8],
        [
            ("tensor", "input", fmt_shape(ins[p + ".proj"])),
            (
                "conv",
                f"conv {k}×{k}\nstride {s}, pad {k // 2}",
                lab[p + ".proj"],
                1.05,
            ),
            ("tokens", "flatten", f"{h[0] * h[1]}×{out[p + '.proj'][1]}"),
            ("norm", "LayerNorm", lab[p + ".norm"]),
            ("tensor", "tokens + (H', W')", f"({h[0]}, {h[1]})", 1.3),
        ],
        w=0.95,
        h=0.68,
    )
    c.legend(0.2, note=f"K = {k} > S = {s}: neighbouring patches overlap")
    return c.done(lab, out)
