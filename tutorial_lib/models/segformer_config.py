"""SegFormer's configuration: :class:`SegFormerConfig` and the released MiT-B0…B5
variants (Xie et al., NeurIPS 2021; NVlabs/SegFormer ``mit_b0``…``mit_b5``).

The model is :class:`tutorial_lib.models.segformer.SegFormer`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from .._validate import check_choice, check_positive

__all__ = ["SegFormerConfig", "MIT_VARIANTS", "segformer_config"]


@dataclass(frozen=True)
class SegFormerConfig:
    """Hyper-parameters of a SegFormer; the defaults are MiT-B0 with the ADE20K head
    (150 classes)."""

    embed_dims: Tuple[int, ...] = (32, 64, 160, 256)
    depths: Tuple[int, ...] = (2, 2, 2, 2)
    num_heads: Tuple[int, ...] = (1, 2, 5, 8)
    sr_ratios: Tuple[int, ...] = (8, 4, 2, 1)
    mlp_ratios: Tuple[int, ...] = (4, 4, 4, 4)
    patch_sizes: Tuple[int, ...] = (7, 3, 3, 3)
    strides: Tuple[int, ...] = (4, 2, 2, 2)
    decoder_dim: int = 256
    num_classes: int = 150
    in_chans: int = 3
    drop_path_rate: float = 0.1
    decoder_dropout: float = 0.1
    layer_norm_eps: float = (
        1e-6  # block norms and stage-end norms (official code); HF: 1e-5
    )
    # The ablation of chapter 10 (not SegFormer): "plain" replaces Mix-FFN by the
    # usual two-layer MLP, and position_size (a training input size, e.g. 64) adds a
    # learned position table to each stage's tokens, sized for that input and
    # resized bilinearly for others, as PVT (SegFormer's predecessor) and ViT do.
    ffn: str = "mix"
    position_size: Optional[int] = None

    def __post_init__(self) -> None:
        stages = len(self.embed_dims)
        for name in (
            "embed_dims",
            "depths",
            "num_heads",
            "sr_ratios",
            "mlp_ratios",
            "patch_sizes",
            "strides",
        ):
            value = tuple(getattr(self, name))
            object.__setattr__(self, name, value)
            if len(value) != stages:
                raise ValueError(
                    f"SegFormerConfig {name}: expected {stages} values (one per "
                    "stage, like "
                    f"embed_dims), got {len(value)}: {value}"
                )
            for v in value:
                check_positive(v, f"SegFormerConfig {name}")
        for dim, heads in zip(self.embed_dims, self.num_heads):
            if dim % heads:
                raise ValueError(
                    "SegFormerConfig: expected each embed dim divisible by its "
                    f"heads, got {dim} and {heads}"
                )
        for name in ("decoder_dim", "num_classes", "in_chans"):
            check_positive(getattr(self, name), f"SegFormerConfig {name}")
        for name in ("drop_path_rate", "decoder_dropout"):
            if not 0.0 <= float(getattr(self, name)) < 1.0:
                raise ValueError(
                    f"SegFormerConfig {name}: expected a value in [0, 1), got "
                    f"{getattr(self, name)!r}"
                )
        check_choice(self.ffn, "SegFormerConfig ffn", ("mix", "plain"))
        if self.position_size is not None:
            check_positive(self.position_size, "SegFormerConfig position_size")
        if not float(self.layer_norm_eps) > 0:
            raise ValueError(
                "SegFormerConfig layer_norm_eps: expected > 0, got "
                f"{self.layer_norm_eps!r}"
            )


_WIDE = (64, 128, 320, 512)
#: Widths, depths and decoder width C of MiT-B0…B5 as released (NVlabs
#: ``mit_b0``…``mit_b5``).
MIT_VARIANTS = {
    "b0": dict(embed_dims=(32, 64, 160, 256), depths=(2, 2, 2, 2), decoder_dim=256),
    "b1": dict(embed_dims=_WIDE, depths=(2, 2, 2, 2), decoder_dim=256),
    "b2": dict(embed_dims=_WIDE, depths=(3, 4, 6, 3), decoder_dim=768),
    "b3": dict(embed_dims=_WIDE, depths=(3, 4, 18, 3), decoder_dim=768),
    "b4": dict(embed_dims=_WIDE, depths=(3, 8, 27, 3), decoder_dim=768),
    "b5": dict(embed_dims=_WIDE, depths=(3, 6, 40, 3), decoder_dim=768),
}


def segformer_config(variant: str, **overrides) -> SegFormerConfig:
    """The configuration of MiT-``variant`` (``"b0"``…``"b5"``), with field
    ``overrides``."""
    check_choice(variant, "segformer_config variant", list(MIT_VARIANTS))
    return SegFormerConfig(**{**MIT_VARIANTS[variant], **overrides})
