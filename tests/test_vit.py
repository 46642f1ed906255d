"""ViT encoder: parameter counts, position-embedding interpolation, fixed-resolution errors."""
from __future__ import annotations

import pytest
import torch

from tutorial_lib.models.vit import (ViTConfig, VisionTransformer, resize_pos_embed, vit_base_patch16_224,
                                     vit_large_patch16_224)
from tutorial_lib.profiling import count_params

# papers.md §4.2: timm-style counts (qkv bias, final LN, 1000-class head, 224 input)
TIMM = {"vit_b16": 86_567_656, "vit_l16": 304_326_632, "vit_b16_no_head": 85_798_656,
        "vit_l16_no_head": 303_301_632}
PAPER_TABLE1 = {"vit_b16": 86e6, "vit_l16": 307e6}


def _formula(d: int, depth: int, n: int, classes: int) -> int:
    """Closed form (papers.md §7): patch conv + cls + pos + blocks + final LN + head."""
    block = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d)
    return (3 * 256 * d + d) + d + (n + 1) * d + depth * block + 2 * d + (d * classes + classes if classes else 0)


def test_parameter_counts_on_meta() -> None:
    with torch.device("meta"):
        base, large = vit_base_patch16_224(), vit_large_patch16_224()
        base0, large0 = vit_base_patch16_224(num_classes=0), vit_large_patch16_224(num_classes=0)
    assert count_params(base) == TIMM["vit_b16"] == _formula(768, 12, 196, 1000)
    assert count_params(large) == TIMM["vit_l16"] == _formula(1024, 24, 196, 1000)
    assert count_params(base0) == TIMM["vit_b16_no_head"]
    assert count_params(large0) == TIMM["vit_l16_no_head"]
    # "86M" fits (85.80 M without the head rounds to it, 86.57 M with it truncates to it);
    # "307M" fits neither way: the module is 3.0 M (no head) or 2.7 M (head) short of it
    assert round(count_params(base0) / 1e6) == int(count_params(base) / 1e6) == PAPER_TABLE1["vit_b16"] / 1e6
    assert round(count_params(large0) / 1e6) != PAPER_TABLE1["vit_l16"] / 1e6
    assert int(count_params(large) / 1e6) != PAPER_TABLE1["vit_l16"] / 1e6
    assert abs(count_params(large) - PAPER_TABLE1["vit_l16"]) > 2e6


def test_l16_at_384_still_not_307m() -> None:
    with torch.device("meta"):
        large384 = vit_large_patch16_224(img_size=384)
    assert count_params(large384) == TIMM["vit_l16"] + (576 - 196) * 1024
    assert abs(count_params(large384) - 307e6) > 2e6


def test_resize_pos_embed_keeps_class_token_and_is_exact_at_same_size() -> None:
    pos = torch.randn(1, 1 + 4 * 6, 8)
    for mode in ("bilinear", "bicubic"):
        same = resize_pos_embed(pos, (4, 6), (4, 6), mode=mode)
        torch.testing.assert_close(same, pos, rtol=0, atol=1e-6)
        bigger = resize_pos_embed(pos, (4, 6), (8, 12), mode=mode)
        assert bigger.shape == (1, 1 + 96, 8)
        assert torch.equal(bigger[:, 0], pos[:, 0])


def test_resize_pos_embed_is_spatial_interpolation() -> None:
    # a position embedding that is a linear ramp in x stays a linear ramp after bilinear resizing
    grid = torch.linspace(0, 1, 4).repeat(4, 1)  # (4, 4): value = column
    pos = torch.cat([torch.full((1, 1), 7.0), grid.reshape(1, 16)], dim=1)[..., None]  # (1, 17, 1)
    out = resize_pos_embed(pos, 4, 8)[0, 1:, 0].reshape(8, 8)
    assert torch.allclose(out[0], out[5])  # the same in every row
    assert (out[0].diff() >= 0).all()  # increasing along x
    assert out.shape == (8, 8)


def test_bilinear_and_bicubic_differ_when_upsampling() -> None:
    pos = torch.randn(1, 1 + 9, 4)
    assert not torch.allclose(resize_pos_embed(pos, 3, 6, mode="bilinear"),
                              resize_pos_embed(pos, 3, 6, mode="bicubic"))


def test_resize_pos_embed_validates() -> None:
    with pytest.raises(ValueError, match="1 \\+ 3x3 = 10 tokens"):
        resize_pos_embed(torch.randn(1, 17, 4), 3, 4)
    with pytest.raises(ValueError, match="one of"):
        resize_pos_embed(torch.randn(1, 10, 4), 3, 4, mode="nearest")


def _tiny(**kw) -> VisionTransformer:
    return VisionTransformer(ViTConfig(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=4,
                                       num_classes=5, **kw))


def test_forward_shapes_and_layers() -> None:
    model = _tiny().eval()
    x = torch.randn(2, 3, 32, 32)
    assert model(x).shape == (2, 5)
    layers = model.forward_layers(x)
    assert len(layers) == 2 and layers[-1].shape == (2, 17, 32)


def test_fixed_resolution_error_and_dynamic_size() -> None:
    with pytest.raises(ValueError, match="expected an input of 32x32"):
        _tiny()(torch.randn(1, 3, 48, 48))
    with pytest.raises(ValueError, match="divisible by the patch size 8"):
        _tiny(dynamic_img_size=True)(torch.randn(1, 3, 36, 36))
    model = _tiny(dynamic_img_size=True).eval()
    assert model(torch.randn(1, 3, 48, 64)).shape == (1, 5)
    # at the native size the dynamic model gives the same output as the fixed one
    fixed = _tiny().eval()
    fixed.load_state_dict(model.state_dict())
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(model(x), fixed(x))


def test_vit_huge_patch14_matches_the_paper_632m():
    """ViT Table 1: ViT-Huge (32 layers, D=1280, MLP 5120, 16 heads) "632M", with 14×14 patches."""
    with torch.device("meta"):
        model = VisionTransformer(ViTConfig(patch_size=14, embed_dim=1280, depth=32, num_heads=16))
    assert count_params(model) == 632_045_800


# --- global average pooling instead of the class token (ViT Appendix D.3) -----------


def test_global_pool_avg_has_no_class_token_and_averages_the_patch_tokens():
    torch.manual_seed(0)
    cfg = dict(img_size=32, patch_size=8, embed_dim=16, depth=2, num_heads=2, num_classes=5)
    token = VisionTransformer(ViTConfig(**cfg))
    gap = VisionTransformer(ViTConfig(**cfg, global_pool="avg"))
    assert gap.cls_token is None and gap.num_prefix_tokens == 0
    assert tuple(gap.pos_embed.shape) == (1, 16, 16)  # one row per patch, none for a class token
    # the class token and its position row are the only parameters that go
    assert count_params(token) - count_params(gap) == 2 * 16
    x = torch.randn(2, 3, 32, 32)
    z = gap.forward_features(x)
    assert tuple(z.shape) == (2, 16, 16)  # patch tokens only
    torch.testing.assert_close(gap(x), gap.head(z.mean(dim=1)))


def test_global_pool_avg_interpolates_without_a_prefix():
    gap = VisionTransformer(ViTConfig(img_size=32, patch_size=8, embed_dim=16, depth=1, num_heads=2,
                                      num_classes=0, global_pool="avg", dynamic_img_size=True))
    assert tuple(gap.forward_features(torch.randn(1, 3, 48, 64)).shape) == (1, 6 * 8, 16)


def test_global_pool_refuses_other_values():
    with pytest.raises(ValueError, match="global_pool"):
        VisionTransformer(ViTConfig(img_size=32, patch_size=8, embed_dim=16, depth=1, num_heads=2,
                                    global_pool="max"))
