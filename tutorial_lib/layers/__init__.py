"""Building blocks, one concept per module (``tutorial_lib.layers.<concept>``).

Every public name of every layer module is re-exported here, as timm does for its
layers: ``from tutorial_lib.layers import ASPP, MixFFN, conv_bn_relu``.
``tests/test_house.py`` checks that ``__all__`` below is the union of the modules'
``__all__`` (a new layer module is registered by adding its import here).
"""

from .all_mlp_decoder import (
    AllMLPDecoder,
    FoldedAllMLPDecoder,
    fold_all_mlp_decoder,
)
from .aspp import (
    ASPP_RATES,
    aspp_rates,
    ImagePooling,
    ASPP,
)
from .atrous import (
    effective_kernel_size,
    same_padding,
    conv_output_size,
    sampled_offsets,
    receptive_field,
    atrous_footprint,
    atrous_conv2d,
    stack_offsets,
    AtrousConv2d,
)
from .attention import (
    attention_explicit,
    Attention,
)
from .blocks import (
    conv_bn_relu,
)
from .efficient_attention import (
    EfficientSelfAttention,
    efficient_attention_macs,
)
from .mix_ffn import (
    MixFFN,
)
from .overlap_patch_embed import (
    OverlapPatchEmbed,
    overlap_output_size,
)
from .patch_embed import (
    patchify,
    unpatchify,
    check_patch_divisible,
    PatchEmbed,
)
from .separable import (
    standard_conv_macs,
    depthwise_conv_macs,
    pointwise_conv_macs,
    separable_cost_ratio,
    SeparableConv2d,
)
from .sequence_reduction import (
    SequenceReductionLiteral,
    conv_weight_to_linear,
    linear_weight_to_conv,
)

__all__ = [
    "AllMLPDecoder",
    "FoldedAllMLPDecoder",
    "fold_all_mlp_decoder",
    "ASPP_RATES",
    "aspp_rates",
    "ImagePooling",
    "ASPP",
    "effective_kernel_size",
    "same_padding",
    "conv_output_size",
    "sampled_offsets",
    "receptive_field",
    "atrous_footprint",
    "atrous_conv2d",
    "stack_offsets",
    "AtrousConv2d",
    "attention_explicit",
    "Attention",
    "conv_bn_relu",
    "EfficientSelfAttention",
    "efficient_attention_macs",
    "MixFFN",
    "OverlapPatchEmbed",
    "overlap_output_size",
    "patchify",
    "unpatchify",
    "check_patch_divisible",
    "PatchEmbed",
    "standard_conv_macs",
    "depthwise_conv_macs",
    "pointwise_conv_macs",
    "separable_cost_ratio",
    "SeparableConv2d",
    "SequenceReductionLiteral",
    "conv_weight_to_linear",
    "linear_weight_to_conv",
]
