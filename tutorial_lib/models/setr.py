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

import math
from dataclasses import dataclass, replace
from typing import Dict, List, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from .._validate import check_choice, check_positive, check_tokens
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

Size = Union[int, Tuple[int, int]]


@dataclass(frozen=True)
class SETRConfig:
    """SETR hyper-parameters. Layer indices are 0-based (``9`` is the paper's Z^10).

    ``aux_indices``: encoder layers read by the Naive/PUP auxiliary heads;
    ``mla_indices``: the layers tapped by MLA (whose auxiliary heads read the four
    neck outputs).
    """

    decoder: str = "pup"
    img_size: Size = 512
    patch_size: int = 16
    in_chans: int = 3
    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    num_classes: int = 150
    aux: bool = True
    aux_indices: Tuple[int, ...] = (9, 14, 19, 23)
    mla_indices: Tuple[int, ...] = (5, 11, 17, 23)
    head_channels: int = 256
    mla_channels: int = 256
    mlahead_channels: int = 128
    conv_seg: bool = True
    conv_seg_channels: int = 512
    norm_eps: float = 1e-6
    drop_rate: float = 0.0
    dynamic_img_size: bool = False


def _conv_bn_relu(
    cin: int, cout: int, k: int, bias: bool = True
) -> List[nn.Module]:
    return [
        nn.Conv2d(cin, cout, k, padding=k // 2, bias=bias),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


def tokens_to_map(x: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
    """``(B, N, D) -> (B, D, h, w)`` for a token grid ``(h, w)`` in raster order."""
    check_tokens(x, "tokens_to_map input", length=grid[0] * grid[1])
    return x.transpose(1, 2).reshape(
        x.shape[0], x.shape[2], grid[0], grid[1]
    )  # (B, D, h, w)


def _up(x: torch.Tensor, scale: int, align_corners: bool = False) -> torch.Tensor:
    return F.interpolate(
        x, scale_factor=scale, mode="bilinear", align_corners=align_corners
    )


class _Head(nn.Module):
    def _add_conv_seg(self, config: SETRConfig) -> None:
        # Built by the official BaseDecodeHead and never called: counted, not used.
        if config.conv_seg:
            self.conv_seg = nn.Conv2d(
                config.conv_seg_channels, config.num_classes, 1
            )


class NaiveHead(_Head):
    """SETR-Naive head (also its auxiliary head): ``(B, N, D) -> (B, K, h, w)`` at
    the token grid.

    LN → ``conv_0`` 1×1 (D→256) → ``bn_0`` → ReLU → ``conv_1`` 1×1 (→K); the
    official names are ``conv_0``, ``syncbn_fc_0``, ``conv_1``. SETR then upsamples
    bilinearly to the image.
    """

    def __init__(self, config: SETRConfig) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(config.embed_dim, eps=config.norm_eps)
        self.conv_0 = nn.Conv2d(config.embed_dim, config.head_channels, 1)
        self.bn_0 = nn.BatchNorm2d(config.head_channels)
        self.conv_1 = nn.Conv2d(config.head_channels, config.num_classes, 1)
        self._add_conv_seg(config)

    def forward(self, x: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
        x = tokens_to_map(self.norm(x), grid)  # (B, D, h, w)
        return self.conv_1(F.relu(self.bn_0(self.conv_0(x))))  # (B, K, h, w)


class PUPHead(_Head):
    """SETR-PUP head: ``(B, N, D) -> (B, K, P·h, P·w)`` by alternating conv and 2×
    upsampling.

    ``log2(P)`` upsamplings in all: one after each of the first ``log2(P) - 1``
    conv–BN–ReLU (``conv_i``/``bn_i``, official ``syncbn_fc_i``) and one after the
    1×1 classifier ``conv_4``; for P = 16 this is the official order (↑ after conv
    0, 1, 2 and after the classifier).
    """

    def __init__(self, config: SETRConfig) -> None:
        super().__init__()
        ups = math.log2(config.patch_size)
        if ups != int(ups) or not 1 <= ups <= 4:
            raise ValueError(
                f"PUPHead: expected a patch size in (2, 4, 8, 16) (four convs, 2× steps), "
                f"got {config.patch_size}"
            )
        self.num_up = int(ups)
        c, d = config.head_channels, config.embed_dim
        self.norm = nn.LayerNorm(d, eps=config.norm_eps)
        for i, cin in enumerate((d, c, c, c)):
            setattr(self, f"conv_{i}", nn.Conv2d(cin, c, 3, padding=1))
            setattr(self, f"bn_{i}", nn.BatchNorm2d(c))
        self.conv_4 = nn.Conv2d(c, config.num_classes, 1)
        self._add_conv_seg(config)

    def forward(self, x: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
        x = tokens_to_map(self.norm(x), grid)  # (B, D, h, w)
        for i in range(4):
            x = F.relu(
                getattr(self, f"bn_{i}")(getattr(self, f"conv_{i}")(x))
            )  # (B, 256, ., .)
            if i < self.num_up - 1:
                x = _up(x, 2)  # 2h, 4h, 8h
        return _up(self.conv_4(x), 2)  # (B, K, P·h, P·w)


class PUPAuxHead(_Head):
    """SETR-PUP auxiliary head: LN → 3×3 conv (D→256) → BN → ReLU → ↑4 → 1×1 conv
    (→K).

    ``(B, N, D) -> (B, K, 4h, 4w)`` (official
    ``num_conv=2, num_upsampe_layer=2, conv3x3_conv1x1=True``).
    """

    def __init__(self, config: SETRConfig) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(config.embed_dim, eps=config.norm_eps)
        self.conv_0 = nn.Conv2d(
            config.embed_dim, config.head_channels, 3, padding=1
        )
        self.bn_0 = nn.BatchNorm2d(config.head_channels)
        self.conv_1 = nn.Conv2d(config.head_channels, config.num_classes, 1)
        self._add_conv_seg(config)

    def forward(self, x: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
        x = tokens_to_map(self.norm(x), grid)  # (B, D, h, w)
        x = _up(F.relu(self.bn_0(self.conv_0(x))), 4)  # (B, 256, 4h, 4w)
        return self.conv_1(x)  # (B, K, 4h, 4w)


class MLANeck(nn.Module):
    """The multi-level aggregation that the official code puts in its backbone
    (``VIT_MLA``).

    Four token maps (shallow → deep) ``(B, N, D)`` → per stream LN (``norm[i]``,
    official ``norm_0..3``) and 1×1 conv D→256 without bias + BN + ReLU
    (``proj[i]``, official ``mla_p*_1x1``); top-down cumulative sums from the
    deepest stream; a 3×3 conv 256→256 + BN + ReLU per stream (``smooth[i]``,
    official ``mla_p*``). Returns four ``(B, 256, h, w)`` maps.
    """

    def __init__(self, config: SETRConfig) -> None:
        super().__init__()
        d, c = config.embed_dim, config.mla_channels
        self.norm = nn.ModuleList(
            [nn.LayerNorm(d, eps=config.norm_eps) for _ in range(4)]
        )
        self.proj = nn.ModuleList(
            [nn.Sequential(*_conv_bn_relu(d, c, 1, bias=False)) for _ in range(4)]
        )
        self.smooth = nn.ModuleList(
            [nn.Sequential(*_conv_bn_relu(c, c, 3, bias=False)) for _ in range(4)]
        )

    def forward(
        self, features: Sequence[torch.Tensor], grid: Tuple[int, int]
    ) -> List[torch.Tensor]:
        if len(features) != 4:
            raise ValueError(
                f"MLANeck: expected 4 token maps (shallow to deep), got {len(features)}"
            )
        lateral = [
            proj(tokens_to_map(norm(x), grid))
            for x, norm, proj in zip(features, self.norm, self.proj)
        ]
        summed = [
            lateral[3]
        ]  # deepest stream first: p24, p24+p18, p24+p18+p12, ...
        for lat in reversed(lateral[:3]):
            summed.append(summed[-1] + lat)  # (B, 256, h, w)
        summed = summed[::-1]  # back to shallow -> deep
        return [
            smooth(s) for s, smooth in zip(summed, self.smooth)
        ]  # 4 × (B, 256, h, w)


class MLAHead(_Head):
    """SETR-MLA head (official ``VIT_MLAHead``): four ``(B, 256, h, w)`` maps →
    ``(B, K, 4h, 4w)``.

    Per stream ``head2..head5``: 3×3 conv 256→128 + BN + ReLU, 3×3 conv 128→128 + BN
    + ReLU (no bias), bilinear ↑4 with ``align_corners=True``; concatenation (4·128
    channels) and a 3×3 classifier ``cls`` (→K).
    """

    def __init__(self, config: SETRConfig) -> None:
        super().__init__()
        c, m = config.mla_channels, config.mlahead_channels
        for i in range(2, 6):
            setattr(
                self,
                f"head{i}",
                nn.Sequential(
                    *_conv_bn_relu(c, m, 3, bias=False),
                    *_conv_bn_relu(m, m, 3, bias=False),
                ),
            )
        self.cls = nn.Conv2d(4 * m, config.num_classes, 3, padding=1)
        self._add_conv_seg(config)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(features) != 4:
            raise ValueError(
                f"MLAHead: expected 4 feature maps, got {len(features)}"
            )
        streams = [
            _up(
                getattr(self, f"head{i + 2}")(f), 4, align_corners=True
            )  # (B, 128, 4h, 4w)
            for i, f in enumerate(features)
        ]
        return self.cls(torch.cat(streams, dim=1))  # (B, K, 4h, 4w)


class MLAAuxHead(_Head):
    """SETR-MLA auxiliary head (official ``VIT_MLA_AUXIHead``): 1×1 conv 256→K, no
    bias."""

    def __init__(self, config: SETRConfig) -> None:
        super().__init__()
        self.aux = nn.Conv2d(config.mla_channels, config.num_classes, 1, bias=False)
        self._add_conv_seg(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.aux(x)  # (B, K, h, w)


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
                    f"SETRConfig {name}: expected layer indices in [0, {config.depth}), got {bad}"
                )
        if config.decoder == "mla" and len(config.mla_indices) != 4:
            raise ValueError(
                f"SETRConfig mla_indices: expected 4 layers, got {config.mla_indices}"
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
        grid = self.encoder.grid_for(
            x
        )  # validates (B, C, H, W) and divisibility by the patch size
        if (
            self.neck is not None
        ):  # official VIT_MLA: the class token never enters the blocks
            layers = self.encoder.forward_layers(
                x, class_token=False
            )  # L × (B, N, D)
        else:  # official VIT (Naive, PUP): it does, and the heads drop it
            layers = [
                z[:, 1:] for z in self.encoder.forward_layers(x)
            ]  # L × (B, N, D)
        with_aux = self.training and len(self.auxiliary_heads) > 0
        if self.neck is not None:
            maps = self.neck(
                [layers[i] for i in self.config.mla_indices], grid
            )  # 4 × (B, 256, h, w)
            out = self.decode_head(maps)  # (B, K, 4h, 4w)
            aux = (
                [head(m) for head, m in zip(self.auxiliary_heads, maps)]
                if with_aux
                else []
            )
        else:
            out = self.decode_head(layers[-1], grid)  # (B, K, ., .)
            aux = (
                [
                    head(layers[i], grid)
                    for head, i in zip(
                        self.auxiliary_heads, self.config.aux_indices
                    )
                ]
                if with_aux
                else []
            )
        out = F.interpolate(
            out, size=size, mode="bilinear", align_corners=False
        )  # (B, K, H, W)
        if not with_aux:
            return out
        return {
            "out": out,
            "aux": [
                F.interpolate(a, size=size, mode="bilinear", align_corners=False)
                for a in aux
            ],
        }

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


#: The encoder sizes of paper Table 1 (T-Large, T-Base) and the book's CPU-sized "tiny" encoder, with the
#: auxiliary layers of the official configs (Base: ``SETR_*_Base``/``*_DeiT`` ADE20K configs).
SETR_SIZES: Dict[str, dict] = {
    "large": dict(
        embed_dim=1024,
        depth=24,
        num_heads=16,
        patch_size=16,
        aux={"naive": (9, 14, 19), "pup": (9, 14, 19, 23)},
        mla=(5, 11, 17, 23),
    ),
    "base": dict(
        embed_dim=768,
        depth=12,
        num_heads=12,
        patch_size=16,
        aux={"naive": (2, 5, 8), "pup": (4, 7, 9, 11)},
        mla=(2, 5, 8, 11),
    ),
    "tiny": dict(
        embed_dim=64,
        depth=4,
        num_heads=4,
        patch_size=8,
        head_channels=32,
        mla_channels=32,
        mlahead_channels=16,
        conv_seg=False,
        aux={"naive": (0, 1, 2), "pup": (0, 1, 2, 3)},
        mla=(0, 1, 2, 3),
    ),
}


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
