"""Checkpoints, the public front: every name of the hub modules, documented here.

* :mod:`tutorial_lib.hub_io` — the low-level layer: ``load_state_dict`` reads
  ``.safetensors`` files with :mod:`safetensors`, and anything else with
  ``torch.load(..., weights_only=True)``, which refuses pickles that would run
  code; ``download_cached`` fetches a URL once into a cache folder and checks its
  SHA-256 before the file enters the cache (meant for Colab paths only; tested here
  with local ``file://`` URLs).
* :mod:`tutorial_lib.hub_segformer` — ``segformer_from_hf_state_dict`` and
  ``segformer_from_nvlabs_state_dict`` convert released SegFormer checkpoints
  (Hugging Face Hub layout, official NVlabs layout) into
  :class:`tutorial_lib.models.segformer.SegFormer`;
  :mod:`tutorial_lib.hub_segformer_export` — ``segformer_to_hf_state_dict``,
  ``segformer_hf_config`` and ``save_hf_pretrained`` export ours to the Hugging
  Face layout.
* :mod:`tutorial_lib.hub_pretrained` — ``load_pretrained_segformer`` downloads a
  pretrained SegFormer pinned in ``PRETRAINED_SEGFORMER`` (Colab only);
  ``load_pretrained_vit_pos_embed`` reads the position embeddings of a released
  ViT pinned in ``PRETRAINED_VIT`` (Colab only); ``hub_io.load_tensor`` reads one
  tensor of a checkpoint.

The layers import downwards only: ``hub_pretrained`` → ``hub_segformer``,
``hub_io``; this module imports them all and defines nothing.
"""

from __future__ import annotations

from .hub_io import (
    default_cache_dir,
    download_cached,
    load_state_dict,
    load_tensor,
    save_state_dict,
)
from .hub_pretrained import (
    PRETRAINED_SEGFORMER,
    PRETRAINED_VIT,
    PinnedCheckpoint,
    load_pretrained_segformer,
    load_pretrained_vit_pos_embed,
)
from .hub_segformer import (
    HF_SEGFORMER_RULES,
    NVLABS_SEGFORMER_RULES,
    convert_state_dict,
    segformer_from_hf_state_dict,
    segformer_from_nvlabs_state_dict,
)
from .hub_segformer_export import (
    HF_LAYER_NORM_EPS,
    save_hf_pretrained,
    segformer_hf_config,
    segformer_to_hf_state_dict,
)

__all__ = [
    "load_state_dict",
    "save_state_dict",
    "download_cached",
    "default_cache_dir",
    "convert_state_dict",
    "segformer_from_hf_state_dict",
    "segformer_from_nvlabs_state_dict",
    "segformer_to_hf_state_dict",
    "segformer_hf_config",
    "save_hf_pretrained",
    "HF_SEGFORMER_RULES",
    "NVLABS_SEGFORMER_RULES",
    "HF_LAYER_NORM_EPS",
    "PinnedCheckpoint",
    "PRETRAINED_SEGFORMER",
    "load_pretrained_segformer",
    "load_tensor",
    "PRETRAINED_VIT",
    "load_pretrained_vit_pos_embed",
]
