"""tutorial_lib: the components of DeepLabV3+, SETR and SegFormer, built step by
step.

The companion library of the book "Segmentation architectures, built step by step".
Every component lives here once; the chapters build naive versions inline, compare
them with these modules and show their source.
"""

from .utils import glue, seed_everything, setup_notebook, show_source

__version__ = "0.1.0"
__all__ = [
    "setup_notebook",
    "seed_everything",
    "show_source",
    "glue",
    "__version__",
]
