"""SegFormer (Xie et al., NeurIPS 2021): the Mix Transformer encoder MiT-B0…B5 and
the All-MLP decoder.

The configurations follow the released code and weights (NVlabs/SegFormer
``mit_b0``…``mit_b5``): MLP ratio 4 in every stage, although the paper's Table 6
lists 8 for stages 1–2 of B0–B4 (the chapter explains the mismatch). Block and
stage-end LayerNorms use eps 1e-6 as the official code; Hugging Face's
implementation uses 1e-5 everywhere, so its converted weights get a config with
``layer_norm_eps=1e-5`` (:func:`tutorial_lib.hub.segformer_from_hf_state_dict`).

The configuration (:class:`~tutorial_lib.models.segformer_config.SegFormerConfig`, ``MIT_VARIANTS``) is in
:mod:`tutorial_lib.models.segformer_config`, the analytic MAC count
(:func:`~tutorial_lib.models.segformer_macs.segformer_macs`) in :mod:`tutorial_lib.models.segformer_macs`; both are
re-exported here.
"""

from __future__ import annotations

import copy
from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from .._validate import check_choice, check_image_batch, check_positive
from ..layers.all_mlp_decoder import AllMLPDecoder, FoldedAllMLPDecoder
from ..layers.efficient_attention import EfficientSelfAttention
from ..layers.mix_ffn import MixFFN
from ..layers.overlap_patch_embed import OverlapPatchEmbed, overlap_output_size
from .segformer_config import MIT_VARIANTS, SegFormerConfig, segformer_config
from .segformer_macs import segformer_macs

__all__ = [
    "SegFormerConfig",
    "MIT_VARIANTS",
    "segformer_config",
    "DropPath",
    "SegFormerBlock",
    "MixTransformerStage",
    "MixTransformer",
    "SegFormer",
    "segformer_macs",
    "segformer_b0",
    "segformer_b1",
    "segformer_b2",
    "segformer_b3",
    "segformer_b4",
    "segformer_b5",
]


class DropPath(nn.Module):
    """Stochastic depth (Huang et al., 2016): drop a residual branch per sample
    while training."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` with each sample's branch zeroed with probability ``p`` (rescaled),
        in training only."""
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)  # (B, 1, ...)
        mask = x.new_empty(shape).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p:.4f}"


class PlainFFN(nn.Module):
    """The usual transformer MLP, ``fc1`` → GELU → ``fc2``: Mix-FFN without its 3×3
    depthwise convolution (chapter 10's ablation). Shapes:
    ``x: (B, N, C), H, W -> (B, N, C)``; ``H, W`` are accepted and unused."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        check_positive(dim, "PlainFFN dim")
        check_positive(hidden_dim, "PlainFFN hidden_dim")
        self.fc1, self.act, self.fc2 = (
            nn.Linear(dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, dim),
        )

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))  # (B, N, C)


class SegFormerBlock(nn.Module):
    r"""A Mix Transformer block (Xie et al., 2021, §3.1): pre-norm efficient
    attention and Mix-FFN.

    .. math::
        x &\leftarrow x + \mathrm{DropPath}(\mathrm{EffAttn}(\mathrm{LN}(x)))\\
        x &\leftarrow x + \mathrm{DropPath}(\mathrm{MixFFN}(\mathrm{LN}(x)))

    Shapes: ``x: (B, N, C), H, W -> (B, N, C)``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        sr_ratio: int,
        mlp_ratio: int,
        drop_path: float = 0.0,
        layer_norm_eps: float = 1e-6,
        ffn: str = "mix",
    ) -> None:
        super().__init__()
        check_choice(ffn, "SegFormerBlock ffn", ("mix", "plain"))
        self.norm1 = nn.LayerNorm(dim, eps=layer_norm_eps)
        self.attn = EfficientSelfAttention(
            dim, num_heads=num_heads, sr_ratio=sr_ratio, qkv_bias=True
        )
        self.norm2 = nn.LayerNorm(dim, eps=layer_norm_eps)
        self.mlp = (
            MixFFN(dim, dim * mlp_ratio)
            if ffn == "mix"
            else PlainFFN(dim, dim * mlp_ratio)
        )
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        """``(B, N, C) -> (B, N, C)`` on an ``H × W`` token grid."""
        x = x + self.drop_path(self.attn(self.norm1(x), H, W))  # (B, N, C)
        return x + self.drop_path(self.mlp(self.norm2(x), H, W))  # (B, N, C)


class MixTransformerStage(nn.Module):
    """One encoder stage: overlapping patch embedding → blocks → LayerNorm → back to
    a map.

    Shapes: ``x: (B, C_in, H, W) -> (B, C, H', W')`` with ``H' = ⌈H / stride⌉``.
    """

    def __init__(
        self, config: SegFormerConfig, index: int, drop_paths: Sequence[float]
    ) -> None:
        super().__init__()
        c = config.embed_dims
        in_chans = config.in_chans if index == 0 else c[index - 1]
        self.patch_embed = OverlapPatchEmbed(
            in_chans, c[index], config.patch_sizes[index], config.strides[index]
        )
        self.blocks = nn.ModuleList(
            SegFormerBlock(
                c[index],
                config.num_heads[index],
                config.sr_ratios[index],
                config.mlp_ratios[index],
                p,
                config.layer_norm_eps,
                config.ffn,
            )
            for p in drop_paths
        )
        self.norm = nn.LayerNorm(c[index], eps=config.layer_norm_eps)
        self.pos_embed: Optional[nn.Parameter] = None
        if config.position_size is not None:
            side = config.position_size
            for stride in config.strides[: index + 1]:
                # the token grid of this stage at that input
                side = -(-side // stride)
            self.pos_embed = nn.Parameter(torch.zeros(1, c[index], side, side))
            nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, H, W) -> (B, C, H', W')``."""
        x, h, w = self.patch_embed(x)  # (B, N, C)
        # plain ints also under jit tracing (count_macs), where sizes are tensors
        h, w = int(h), int(w)
        if self.pos_embed is not None:  # chapter 10's ablation only
            table = self.pos_embed
            if table.shape[-2:] != (h, w):
                table = F.interpolate(table, size=(h, w), mode="bilinear")
            x = x + table.flatten(2).transpose(1, 2)  # (B, N, C)
        for block in self.blocks:
            x = block(x, h, w)  # (B, N, C)
        x = self.norm(x)
        return x.transpose(1, 2).reshape(x.shape[0], -1, h, w)  # (B, C, H', W')


class MixTransformer(nn.Module):
    """The hierarchical MiT encoder: four stages at strides 4, 8, 16, 32 (Xie et
    al., 2021, §3.1).

    Stochastic depth rises linearly from 0 to ``drop_path_rate`` over all blocks of
    all stages.
    Shapes: ``x: (B, 3, H, W) -> [(B, C_i, H/s_i, W/s_i)]`` for
    ``s_i = 4, 8, 16, 32`` (rounded up).
    """

    def __init__(self, config: SegFormerConfig) -> None:
        super().__init__()
        rates = torch.linspace(
            0, config.drop_path_rate, sum(config.depths), device="cpu"
        ).tolist()
        starts = [sum(config.depths[:i]) for i in range(len(config.depths))]
        self.stages = nn.ModuleList(
            MixTransformerStage(config, i, rates[s : s + d])
            for i, (s, d) in enumerate(zip(starts, config.depths))
        )

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        """The four stage maps, stride 4 first."""
        features = []
        for stage in self.stages:
            x = stage(x)  # (B, C_i, H_i, W_i)
            features.append(x)
        return features


class SegFormer(nn.Module):
    """SegFormer: MiT encoder + All-MLP decoder; returns logits at 1/4 of the input
    resolution.

    ``fit``/``evaluate`` upsample the logits to the label size, as mmsegmentation
    does. :meth:`fold_decoder` returns an inference copy whose decoder is
    :class:`~tutorial_lib.layers.all_mlp_decoder.FoldedAllMLPDecoder`.
    Shapes: ``x: (B, 3, H, W) -> (B, num_classes, ⌈H/4⌉, ⌈W/4⌉)``.
    """

    def __init__(self, config: SegFormerConfig = SegFormerConfig()) -> None:
        super().__init__()
        self.config = config
        self.encoder = MixTransformer(config)
        self.decode_head: Union[AllMLPDecoder, FoldedAllMLPDecoder] = AllMLPDecoder(
            config.embed_dims,
            config.decoder_dim,
            config.num_classes,
            config.decoder_dropout,
        )
        self.apply(_init_weights)

    @property
    def min_input_size(self) -> int:
        """The smallest image side for which every sequence-reduction convolution
        has a full window."""
        return next(
            size
            for size in range(1, 1 << 16)
            if all(
                h >= sr
                for h, sr in zip(
                    _stage_sizes(self.config, size), self.config.sr_ratios
                )
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, K, ⌈H/4⌉, ⌈W/4⌉)``."""
        check_image_batch(
            x,
            "SegFormer input",
            channels=self.config.in_chans,
            min_size=self.min_input_size,
        )
        return self.decode_head(self.encoder(x))  # (B, K, H/4, W/4)

    def fold_decoder(self) -> "SegFormer":
        """An eval-mode copy with the folded decoder (same logits, fewer MACs);
        ``self`` is unchanged."""
        if not isinstance(self.decode_head, AllMLPDecoder):
            raise ValueError(
                "fold_decoder: expected an AllMLPDecoder head, got "
                f"{type(self.decode_head).__name__} "
                f"(already folded?)"
            )
        folded = copy.deepcopy(self)
        folded.decode_head = FoldedAllMLPDecoder.from_decoder(self.decode_head)
        return folded.eval()


def _stage_sizes(config: SegFormerConfig, size: int) -> List[int]:
    sizes = []
    for k, s in zip(config.patch_sizes, config.strides):
        size = overlap_output_size(size, k, s)
        sizes.append(size)
    return sizes


def _init_weights(m: nn.Module) -> None:
    """The official initialisation: trunc-normal Linear, unit LayerNorm, He-normal
    (fan-out) convs."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Conv2d):
        fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
        nn.init.normal_(m.weight, 0.0, (2.0 / fan_out) ** 0.5)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def _factory(variant: str):
    def build(num_classes: int = 150, **overrides) -> SegFormer:
        return SegFormer(
            segformer_config(variant, num_classes=num_classes, **overrides)
        )

    build.__name__ = f"segformer_{variant}"
    build.__qualname__ = build.__name__
    dim = MIT_VARIANTS[variant]["decoder_dim"]
    build.__doc__ = (
        f"SegFormer-{variant.upper()} (MiT-{variant.upper()} encoder, decoder width "
        f"{dim}); ``overrides`` are SegFormerConfig fields."
    )
    return build


segformer_b0 = _factory("b0")
segformer_b1 = _factory("b1")
segformer_b2 = _factory("b2")
segformer_b3 = _factory("b3")
segformer_b4 = _factory("b4")
segformer_b5 = _factory("b5")
