"""SegFormer's cost counted analytically: :func:`segformer_macs` gives the MACs of
a configuration at any input size without building the model (B2–B5 at 512² or
640² would be slow to trace); tested equal to
:func:`tutorial_lib.profiling.count_macs`.
"""

from __future__ import annotations

from .._validate import check_positive
from ..layers.efficient_attention import efficient_attention_macs
from ..layers.overlap_patch_embed import overlap_output_size
from .segformer_config import SegFormerConfig

__all__ = ["segformer_macs"]


def segformer_macs(
    config: SegFormerConfig,
    height: int,
    width: int,
    folded: bool = False,
    conv_bias: bool = False,
) -> int:
    """Analytic MACs of ``SegFormer(config)`` on one ``height × width`` image.

    By default the policy of :func:`tutorial_lib.profiling.count_macs`
    (convolutions, linear layers and the two attention products; biases, norms,
    activations and upsampling count zero), so the two agree exactly (tested); use
    this where a forward pass would be slow (B2–B5 at 512² or 640²).
    ``conv_bias=True`` adds one operation per output element of every biased
    convolution, as mmcv's ``get_model_complexity_info`` (which produced the paper's
    Table 1) does; ``folded`` counts
    :class:`~tutorial_lib.layers.all_mlp_decoder.FoldedAllMLPDecoder` instead.
    """
    check_positive(height, "segformer_macs height")
    check_positive(width, "segformer_macs width")
    total, bias, c_prev, h, w, tokens = 0, 0, config.in_chans, height, width, []
    for c, k, s, d, sr, e in zip(
        config.embed_dims,
        config.patch_sizes,
        config.strides,
        config.depths,
        config.sr_ratios,
        config.mlp_ratios,
    ):
        h, w = overlap_output_size(h, k, s), overlap_output_size(w, k, s)
        n = h * w
        total += k * k * c_prev * c * n  # patch embedding conv
        ffn = n * c * e * c + 9 * e * c * n + n * e * c * c  # fc1, dw 3×3, fc2
        total += d * (efficient_attention_macs(h, w, c, sr) + ffn)
        n_r = (h // sr) * (w // sr) if sr > 1 else 0
        # biases of the patch-embedding, depthwise and sr convolutions
        bias += c * n + d * (e * c * n + c * n_r)
        tokens.append(n)
        c_prev = c
    dec = config.decoder_dim
    # linear_c (folded: the merged maps)
    total += sum(n * c * dec for n, c in zip(tokens, config.embed_dims))
    if not folded:
        # linear_fuse at 1/4 resolution
        total += tokens[0] * len(tokens) * dec * dec
    total += tokens[0] * dec * config.num_classes  # linear_pred
    bias += tokens[0] * config.num_classes
    return total + bias if conv_bias else total
