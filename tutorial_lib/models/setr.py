"""SETR: a ViT encoder with Naive, PUP or MLA decoders (Zheng et al., CVPR 2021,
§3.2–3.3).

The encoder is ViT without its final LayerNorm (each head normalises its own input);
its output stride is the patch size (16 in the paper). The class token follows the
official code per variant: Naive and PUP (``VIT``) carry it through the 24 blocks
and the heads drop it; MLA (``VIT_MLA``) drops it right after adding the position
embeddings (``x = x[:, 1:]``), so it never enters a block. The paper does not say
either. The decoders follow the official code (fudan-zvg/SETR, ``vit_up_head.py``,
``vit_mla.py``, ``vit_mla_head.py``, ``vit_mla_auxi_head.py``):

* **Naive**: LN → 1×1 conv (D→256) → BN → ReLU → 1×1 conv (→K) → bilinear to the
  image.
* **PUP** (progressive upsampling): LN → four 3×3 conv–BN–ReLU (D→256→256→256→256)
  with a 2× bilinear upsampling after each of the first three, a 1×1 classifier and
  a last 2× (16× in all).
* **MLA** (multi-level aggregation): LN on layers 6, 12, 18, 24 → 1×1 conv (D→256) →
  top-down cumulative sums → 3×3 conv (the *neck*, part of the official backbone
  ``VIT_MLA``); then per stream two 3×3 conv (256→128→128) and a 4× upsampling,
  concatenation, a **3×3** classifier (512→K) and bilinear to the image. The paper's
  text says "channels halved" and does not mention the 3×3 classifier; the code
  (followed here) goes 1024→256→128.

Auxiliary heads (loss weight 0.4) read the layers the paper names (Z^10, Z^15, Z^20
for Naive; plus Z^24 for PUP; the four MLA streams). Like the official
``BaseDecodeHead``, every head also builds a ``conv_seg`` (1×1, 512→K) that its
``forward`` never calls; it is counted in the paper's #Params, so it is built here
by default (``conv_seg=True``) and itemised by :meth:`SETR.param_breakdown`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Dict, Union

import torch
import torch.nn.functional as F
from torch import nn

from .._validate import check_choice, check_positive
from .setr_config import SETR_SIZES, Size, SETRConfig
from .setr_heads import NaiveHead, PUPAuxHead, PUPHead
from .setr_heads import tokens_to_map  # noqa: F401  (its old home; kept importable)
from .setr_mla import MLAAuxHead, MLAHead, MLANeck
from .vit import ViTConfig, VisionTransformer

__all__ = [
    "SETRConfig",
    "NaiveHead",
    "PUPHead",
    "PUPAuxHead",
    "MLANeck",
    "MLAHead",
    "MLAAuxHead",
    "SETR",
    "setr_naive",
    "setr_pup",
    "setr_mla",
    "SETR_SIZES",
]


class SETR(nn.Module):
    """SEgmentation TRansformer: ``x: (B, 3, H, W) -> logits (B, K, H, W)``.

    In training mode with auxiliary heads it returns
    ``{"out": logits, "aux": [logits, ...]}`` (all at the input size), which
    :func:`tutorial_lib.train.fit` weights 0.4.
    """

    def __init__(self, config: SETRConfig) -> None:
        super().__init__()
        check_choice(config.decoder, "SETRConfig decoder", ("naive", "pup", "mla"))
        check_positive(config.num_classes, "SETRConfig num_classes")
        for name in ("aux_indices", "mla_indices"):
            bad = [i for i in getattr(config, name) if not 0 <= i < config.depth]
            if bad:
                raise ValueError(
                    f"SETRConfig {name}: expected layer indices in [0, "
                    f"{config.depth}), got {bad}"
                )
        if config.decoder == "mla" and len(config.mla_indices) != 4:
            raise ValueError(
                "SETRConfig mla_indices: expected 4 layers, got "
                f"{config.mla_indices}"
            )
        self.config = config
        self.encoder = VisionTransformer(
            ViTConfig(
                img_size=config.img_size,
                patch_size=config.patch_size,
                in_chans=config.in_chans,
                embed_dim=config.embed_dim,
                depth=config.depth,
                num_heads=config.num_heads,
                mlp_ratio=config.mlp_ratio,
                norm_eps=config.norm_eps,
                final_norm=False,
                num_classes=0,
                drop_rate=config.drop_rate,
                dynamic_img_size=config.dynamic_img_size,
                pos_interp_mode="bilinear",
            )
        )
        self.neck = MLANeck(config) if config.decoder == "mla" else None
        head, aux_head = {
            "naive": (NaiveHead, NaiveHead),
            "pup": (PUPHead, PUPAuxHead),
            "mla": (MLAHead, MLAAuxHead),
        }[config.decoder]
        self.decode_head = head(config)
        n_aux = (
            (4 if config.decoder == "mla" else len(config.aux_indices))
            if config.aux
            else 0
        )
        self.auxiliary_heads = nn.ModuleList(
            [aux_head(config) for _ in range(n_aux)]
        )

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, Dict[str, object]]:
        size = x.shape[-2:]
        grid = self.encoder.grid_for(x)  # (h, w) = (H/P, W/P)
        with_aux = self.training and len(self.auxiliary_heads) > 0
        if self.neck is not None:
            # official VIT_MLA: the class token never enters the blocks
            layers = self.encoder.forward_layers(x, class_token=False)
            taps = [layers[i] for i in self.config.mla_indices]  # 4 × (B, N, D)
            maps = self.neck(taps, grid)  # 4 × (B, 256, h, w)
            out = self.decode_head(maps)  # (B, K, 4h, 4w)
            aux_inputs = [(m,) for m in maps]
        else:
            # official VIT (Naive, PUP): it does, and the heads drop it
            layers = self.encoder.forward_layers(x)  # L × (B, 1 + N, D)
            layers = [z[:, 1:] for z in layers]  # L × (B, N, D)
            out = self.decode_head(layers[-1], grid)  # (B, K, ., .)
            aux_inputs = [(layers[i], grid) for i in self.config.aux_indices]
        out = F.interpolate(out, size=size, mode="bilinear")  # (B, K, H, W)
        if not with_aux:
            return out
        aux = [head(*a) for head, a in zip(self.auxiliary_heads, aux_inputs)]
        aux = [F.interpolate(a, size=size, mode="bilinear") for a in aux]
        return {"out": out, "aux": aux}

    def param_breakdown(self) -> Dict[str, int]:
        """Parameters itemised as the paper's #Params is made up (``total`` = their
        sum)."""

        def count(m: nn.Module) -> int:
            return sum(p.numel() for p in m.parameters())

        heads = [self.decode_head, *self.auxiliary_heads]
        unused = sum(count(h.conv_seg) for h in heads if hasattr(h, "conv_seg"))
        main_unused = (
            count(self.decode_head.conv_seg)
            if hasattr(self.decode_head, "conv_seg")
            else 0
        )
        parts = {
            "encoder (ViT)": count(self.encoder),
            "MLA neck": count(self.neck) if self.neck is not None else 0,
            "main head": count(self.decode_head) - main_unused,
            "auxiliary heads": sum(count(h) for h in self.auxiliary_heads)
            - (unused - main_unused),
            "unused conv_seg": unused,
        }
        parts["total"] = sum(parts.values())
        return parts


def _build(
    decoder: str,
    size: str,
    num_classes: int,
    img_size: Size,
    aux: bool,
    **overrides,
) -> SETR:
    check_choice(size, f"setr_{decoder} size", tuple(SETR_SIZES))
    spec = dict(SETR_SIZES[size])
    aux_layers, mla_layers = spec.pop("aux"), spec.pop("mla")
    config = SETRConfig(
        decoder=decoder,
        num_classes=num_classes,
        img_size=img_size,
        aux=aux,
        aux_indices=aux_layers.get(decoder, ()),
        mla_indices=mla_layers,
        **spec,
    )
    return SETR(replace(config, **overrides))


def setr_naive(
    size: str = "large",
    num_classes: int = 150,
    img_size: Size = 512,
    aux: bool = True,
    **overrides,
) -> SETR:
    """SETR-Naive; ``size="large"`` at 512 with 150 classes has the paper's 305.67 M
    parameters."""
    return _build("naive", size, num_classes, img_size, aux, **overrides)


def setr_pup(
    size: str = "large",
    num_classes: int = 150,
    img_size: Size = 512,
    aux: bool = True,
    **overrides,
) -> SETR:
    """SETR-PUP; ``size="large"`` at 512 with 150 classes has the paper's 318.31 M
    parameters."""
    return _build("pup", size, num_classes, img_size, aux, **overrides)


def setr_mla(
    size: str = "large",
    num_classes: int = 150,
    img_size: Size = 512,
    aux: bool = True,
    **overrides,
) -> SETR:
    """SETR-MLA; ``size="large"`` at 512 with 150 classes has the paper's 310.57 M
    parameters."""
    return _build("mla", size, num_classes, img_size, aux, **overrides)
