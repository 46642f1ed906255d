"""The SegFormer layer checks pass the library's modules and fail typical mistakes."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from tutorial_lib import checks
from tutorial_lib.checks import CheckFailed
from tutorial_lib.layers.efficient_attention import EfficientSelfAttention
from tutorial_lib.layers.mix_ffn import MixFFN
from tutorial_lib.layers.overlap_patch_embed import OverlapPatchEmbed


def test_library_modules_pass(capsys: pytest.CaptureFixture) -> None:
    checks.check_overlap_patch_embed(OverlapPatchEmbed)
    checks.check_efficient_self_attention(EfficientSelfAttention)
    checks.check_mix_ffn(MixFFN)
    assert capsys.readouterr().out.count("✓") == 3


class NoPadding(nn.Module):
    def __init__(self, in_chans: int = 3, embed_dim: int = 32, patch_size: int = 7, stride: int = 4) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride)  # mistake: padding 0
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor):
        x = self.proj(x)
        return self.norm(x.flatten(2).transpose(1, 2)), x.shape[2], x.shape[3]


class NoScale(EfficientSelfAttention):
    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        q, k, v = self._heads(x, H, W)
        attn = (q @ k.transpose(-2, -1)).softmax(-1)  # mistake: no 1/sqrt(d)
        return self._merge(attn @ v)


class NoGelu(MixFFN):
    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__(dim, hidden_dim)
        self.act = nn.Identity()  # mistake: no activation


class OfficialNames(nn.Module):
    """The official code's ``dwconv.dwconv`` nesting: the check asks for the chapter's names."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.dwconv = nn.Module()
        self.dwconv.dwconv = nn.Conv2d(hidden_dim, hidden_dim, 3, 1, 1, groups=hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)


@pytest.mark.parametrize("check, wrong, message", [
    (checks.check_overlap_patch_embed, NoPadding, "(H_out, W_out)"),
    (checks.check_efficient_self_attention, NoScale, "values differ"),
    (checks.check_mix_ffn, NoGelu, "values differ"),
    (checks.check_mix_ffn, OfficialNames, "parameter names"),
])
def test_typical_mistakes_fail(check, wrong, message: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(CheckFailed, match="problem"):
        check(wrong)
    assert message in capsys.readouterr().out


def test_registered_for_the_autograder() -> None:
    for name, symbol in (("overlap_patch_embed", "OverlapPatchEmbed"),
                         ("efficient_self_attention", "EfficientSelfAttention"), ("mix_ffn", "MixFFN")):
        assert symbol in checks.REGISTRY[name].names
