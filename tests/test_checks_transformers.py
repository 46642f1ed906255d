"""The chapter 06–07 checks pass the library's own components and fail typical mistakes."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tutorial_lib import checks
from tutorial_lib.layers.patch_embed import patchify
from tutorial_lib.models import setr


def good_patch_embed(x, weight, bias, patch_size):
    return patchify(x, patch_size) @ weight.reshape(weight.shape[0], -1).T + bias


def column_major_patch_embed(x, weight, bias, patch_size):
    b, c, h, w = x.shape
    p = patch_size
    flat = x.reshape(b, c, h // p, p, w // p, p).permute(0, 4, 2, 1, 3, 5).reshape(b, -1, c * p * p)
    return flat @ weight.reshape(weight.shape[0], -1).T + bias


def mhsa(x, qkv_weight, qkv_bias, proj_weight, proj_bias, num_heads, scale_dim=None):
    b, n, d = x.shape
    q, k, v = (x @ qkv_weight.T + qkv_bias).reshape(b, n, 3, num_heads, d // num_heads).permute(2, 0, 3, 1, 4)
    scale = math.sqrt(scale_dim or d // num_heads)
    out = ((q @ k.transpose(-2, -1) / scale).softmax(-1) @ v).transpose(1, 2).reshape(b, n, d)
    return out @ proj_weight.T + proj_bias


def test_patch_embed_check(capsys) -> None:
    checks.check_patch_embed(good_patch_embed)
    with pytest.raises(AssertionError, match="column by column"):
        checks.check_patch_embed(column_major_patch_embed)


def test_attention_check() -> None:
    checks.check_multi_head_self_attention(mhsa)
    with pytest.raises(AssertionError, match=r"scaled by 1/sqrt\(D\)"):
        checks.check_multi_head_self_attention(lambda *a: mhsa(*a, scale_dim=a[0].shape[-1]))


class GoodPUP(nn.Module):
    def __init__(self, embed_dim, channels, num_classes):
        super().__init__()
        self.head = setr.PUPHead(setr.SETRConfig(embed_dim=embed_dim, head_channels=channels,
                                                 num_classes=num_classes, conv_seg=False))

    def state_dict(self, *a, **k):
        return self.head.state_dict(*a, **k)

    def load_state_dict(self, sd, *a, **k):
        return self.head.load_state_dict(sd, *a, **k)

    def forward(self, x, grid):
        return self.head(x, grid)


def test_pup_and_mla_checks() -> None:
    checks.check_pup_head(GoodPUP)

    class Renamed(GoodPUP):  # right maths, wrong names
        def state_dict(self, *a, **k):
            return {k.replace("bn_", "syncbn_fc_"): v for k, v in super().state_dict().items()}

    with pytest.raises(AssertionError, match="state dict keys differ"):
        checks.check_pup_head(Renamed)

    def mla(mla_channels, head_channels, num_classes):
        return setr.MLAHead(setr.SETRConfig(mla_channels=mla_channels, mlahead_channels=head_channels,
                                            num_classes=num_classes, conv_seg=False))

    class GoodMLA(setr.MLAHead):
        def __init__(self, mla_channels, head_channels, num_classes):
            super().__init__(setr.SETRConfig(mla_channels=mla_channels, mlahead_channels=head_channels,
                                             num_classes=num_classes, conv_seg=False))

    checks.check_mla_head(GoodMLA)

    class NoAlign(GoodMLA):
        def forward(self, features):
            streams = [F.interpolate(getattr(self, f"head{i + 2}")(f), scale_factor=4, mode="bilinear",
                                     align_corners=False) for i, f in enumerate(features)]
            return self.cls(torch.cat(streams, dim=1))

    with pytest.raises(AssertionError, match="align_corners=True"):
        checks.check_mla_head(NoAlign)
    with pytest.raises(AssertionError, match="nn.Module subclass"):
        checks.check_mla_head(mla)
