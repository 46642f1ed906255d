"""Diagrams of ViT and SETR (chapters 06–07), labelled with traced shapes.

Each function builds the library's model on the ``meta`` device (no memory, no arithmetic),
runs it once with forward hooks (:func:`tutorial_lib.diagrams.trace`) and writes each traced shape on its box.
``Diagram.labels`` maps module names to those labels; ``tests/test_diagrams.py`` checks them
against :func:`tutorial_lib.profiling.shape_trace` of the same module.
"""

from __future__ import annotations

from typing import Dict, Optional

import torch

from ._draw import Canvas, Diagram, fmt_shape, on_meta, row, trace

__all__ = ["vit_pipeline", "setr_decoders", "setr_mla_decoder"]


def vit_pipeline(
    model: Optional[torch.nn.Module] = None, img_size: int = 224
) -> Diagram:
    """ViT (Dosovitskiy et al., 2021, Fig. 1): patchify → linear → +[cls] → +pos → L blocks → head.

    ``model``: a :class:`~tutorial_lib.models.vit.VisionTransformer` (default ViT-B/16 on ``meta``).
    The lower row opens one block: ``x + MSA(LN(x))``, then ``x + MLP(LN(x))`` (eqs. 2–3).
    """
    from ..models import vit_base_patch16_224

    m = model if model is not None else on_meta(vit_base_patch16_224)
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
    row(
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
        f"patches P×P = {m.config.patch_size}×{m.config.patch_size}: N = "
        "(H/P)·(W/P) tokens, +1 class token",
        8,
        color="#444444",
    )
    # one block, opened
    c.group(0.1, 0.5, 6.9, 1.75, "inside one block (pre-norm, residual)", "block")
    y = 1.05
    xs = [0.6, 1.55, 2.5, 3.25, 4.0, 4.95, 5.9, 6.55]
    row(
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
    naive, pup, mla = (on_meta(f, **kw) for f in (setr_naive, setr_pup, setr_mla))
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
    row(
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
    row(
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
    row(
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
    row(
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


def setr_mla_decoder(
    size: str = "large", img_size: int = 512, num_classes: int = 150
) -> Diagram:
    """SETR-MLA (Zheng et al., 2021, Fig. 1c) as the official code computes it: four
    streams, top-down sums, auxiliary taps, and where its MACs go.

    Rows are the tapped blocks, deepest on top. Each stream: LN and a 1×1 conv, the
    cumulative sum with every deeper stream, a 3×3 conv (the *neck*, ``MLANeck``); an
    auxiliary 1×1 classifier on each neck output (training only); two 3×3 convs and ↑4
    per stream (``MLAHead.head2..5``); concatenation, the 3×3 classifier and ↑4 to the
    image. Shapes are traced from ``setr_mla`` on ``meta`` (the auxiliary heads in
    training mode); the group labels give each part's MACs
    (:func:`tutorial_lib.profiling.count_macs_meta`, test-time model). ``labels`` also
    holds ``"macs:<part>"`` entries (GMACs as text).
    """
    from ..models import setr_mla as factory
    from ..profiling import count_macs_meta

    x = torch.zeros(1, 3, img_size, img_size, device="meta")
    kw = dict(size=size, img_size=img_size, num_classes=num_classes)
    m = on_meta(factory, aux=False, **kw)
    taps = list(m.config.mla_indices)
    names = [f"neck.proj.{i}" for i in range(4)]
    names += [f"neck.smooth.{i}" for i in range(4)]
    names += [f"decode_head.head{i + 2}" for i in range(4)]
    names += ["decode_head.cls", ""]
    out, inp = trace(m, [x], names)
    with_aux = on_meta(factory, aux=True, **kw).train()
    aux_out, _ = trace(with_aux, [x], [f"auxiliary_heads.{i}" for i in range(4)])
    lab: Dict[str, str] = {n: fmt_shape(v) for n, v in {**out, **aux_out}.items()}
    grid = out["neck.proj.0"][-1]
    up = fmt_shape(out["decode_head.head2"][:2] + (4 * grid, 4 * grid))
    macs = count_macs_meta(m, (1, 3, img_size, img_size)).by_module
    parts = {
        "neck": macs["neck"],
        "head": sum(macs[f"decode_head.head{i + 2}"] for i in range(4)),
        "cls": macs["decode_head.cls"],
    }
    for k, v in parts.items():
        lab[f"macs:{k}"] = f"{v / 1e9:.1f}"
    c = Canvas(7.0, 4.15)
    ys = [3.4, 2.65, 1.9, 1.15]  # deepest stream on top
    mid = sum(ys) / 4
    c.group(0.92, 0.5, 3.05, 3.95, f"neck · {lab['macs:neck']} GMACs", "decoder")
    c.group(3.2, 0.5, 5.0, 3.95, f"head · {lab['macs:head']} GMACs", "decoder")
    c.group(
        5.08, 0.5, 6.95, 3.95, f"classifier · {lab['macs:cls']} GMACs", "decoder"
    )
    for r, y in enumerate(ys):
        s = 3 - r  # stream index, shallow (0) to deep (3)
        c.box(
            0.46,
            y,
            0.78,
            0.5,
            "tensor",
            f"$Z^{{{taps[s] + 1}}}$",
            fmt_shape(inp[f"neck.proj.{s}"]),
        )
        c.box(1.33, y, 0.72, 0.5, "conv", "LN, 1×1", lab[f"neck.proj.{s}"])
        c.arrow([(0.85, y), (0.97, y)])
        if r == 0:
            c.arrow([(1.69, y), (2.24, y)])
        else:
            c.merge(1.98, y)
            c.arrow([(1.69, y), (1.87, y)])
            c.arrow([(2.09, y), (2.24, y)])
            c.arrow([(1.98, ys[r - 1]), (1.98, y + 0.11)])  # the deeper sum
        c.box(2.6, y, 0.72, 0.5, "conv", "3×3", lab[f"neck.smooth.{s}"])
        c.arrow([(2.96, y), (3.3, y)])
        c.arrow(
            [(2.6, y - 0.25), (2.6, y - 0.375), (2.7, y - 0.375)], color="#777777"
        )
        c.text(
            2.74,
            y - 0.375,
            f"aux 1×1 → {lab[f'auxiliary_heads.{s}']} (training)",
            ha="left",
            color="#555555",
        )
        c.box(
            3.66, y, 0.72, 0.5, "conv", "2 × 3×3", lab[f"decode_head.head{s + 2}"]
        )
        c.arrow([(4.02, y), (4.15, y)])
        c.resample(4.57, y, 0.84, 0.5, True, "↑4", up)
        c.arrow([(4.99, y), (5.3, y), (5.3, mid + (0.11 if y > mid else -0.11))])
    c.text(1.62, 0.72, "top-down sums", 8, color="#444444")
    c.merge(5.3, mid, "C")
    c.box(6.25, mid, 0.95, 0.5, "conv", "3×3 → K", lab["decode_head.cls"])
    c.arrow([(5.41, mid), (5.775, mid)])
    c.resample(6.25, mid - 0.72, 0.95, 0.42, True, "bilinear ↑4", vertical=True)
    c.arrow([(6.25, mid - 0.25), (6.25, mid - 0.51)])
    c.box(6.25, mid - 1.45, 0.95, 0.5, "tensor", "logits", lab[""])
    c.arrow([(6.25, mid - 0.93), (6.25, mid - 1.2)])
    c.legend(0.22, note="batch omitted; test-time MACs")
    return c.done(lab, {**{k: v for k, v in out.items()}, **aux_out})


# SegFormer's diagrams moved to .segformer; the old import path still works.
from .segformer import (  # noqa: E402, F401
    all_mlp_decoder,
    efficient_attention,
    mix_ffn,
    segformer_overview,
)
