"""SETR's configuration: the hyper-parameters of the encoder and of the three
decoders, and the encoder sizes of the paper's Table 1 (Zheng et al., CVPR 2021).

The model is :class:`tutorial_lib.models.setr.SETR`; its decoders are in
:mod:`tutorial_lib.models.setr_heads` (Naive, PUP) and
:mod:`tutorial_lib.models.setr_mla` (MLA).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple, Union

__all__ = ["SETRConfig", "SETR_SIZES"]

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


#: The encoder sizes of paper Table 1 (T-Large, T-Base) and the book's CPU-sized
#: "tiny" encoder, with the auxiliary layers of the official configs (Base:
#: ``SETR_*_Base``/``*_DeiT`` ADE20K configs).
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
