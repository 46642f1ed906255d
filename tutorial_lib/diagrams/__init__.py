"""Architecture diagrams in one visual language, labelled with shapes traced from the library.

Why matplotlib: it is already a dependency of the wheel, so a diagram renders the same offline,
on Colab and in the static HTML (as the cell's stored PNG, no kernel and no graphviz binary); the
drawing is code next to the model, so the shapes written on it are *computed* — each function
builds the library's own module (on ``device="meta"``, so paper-sized models cost nothing), runs
it once with forward hooks and writes the traced shapes on the boxes. ``tests/test_diagrams.py``
checks every label against :func:`tutorial_lib.profiling.shape_trace`, so a model change cannot
leave a stale diagram. Figures are 7 in wide at the book's 100 dpi (the text column's width);
text is ≥ 8 pt as printed.

Usage in a chapter: ``diagrams.vit_pipeline(); plt.show()``.
"""

from . import cnn, deeplab, segformer, transformers
from ._draw import KINDS, Canvas, Diagram, fmt_shape, on_meta, row, trace
from .cnn import depthwise_separable, dilated_kernel, fcn
from .deeplab import aspp, deeplabv3plus, xception_flows
from .segformer import (
    all_mlp_decoder,
    efficient_attention,
    mix_ffn,
    overlap_patch_embed,
    segformer_overview,
)
from .transformers import setr_decoders, setr_mla_decoder, vit_pipeline

#: Every diagram function, family by family (one module per part of the book).
DIAGRAMS = (
    tuple(cnn.__all__)
    + tuple(deeplab.__all__)
    + tuple(transformers.__all__)
    + tuple(segformer.__all__)
)

__all__ = [
    "KINDS",
    "Canvas",
    "Diagram",
    "fmt_shape",
    "trace",
    "on_meta",
    "row",
    "DIAGRAMS",
    "fcn",
    "dilated_kernel",
    "depthwise_separable",
    "aspp",
    "deeplabv3plus",
    "xception_flows",
    "overlap_patch_embed",
    "vit_pipeline",
    "setr_decoders",
    "setr_mla_decoder",
    "segformer_overview",
    "efficient_attention",
    "mix_ffn",
    "all_mlp_decoder",
]
