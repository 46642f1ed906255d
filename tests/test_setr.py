"""SETR: the six parameter totals of the paper's Table 2, decoder shapes, aux outputs, errors."""
from __future__ import annotations

import pytest
import torch

from tutorial_lib.models.setr import SETR, SETRConfig, setr_mla, setr_naive, setr_pup
from tutorial_lib.profiling import count_params

# Zheng et al. 2021, Table 2 / Table 4 (#Params, millions)
PAPER = {("large", "naive"): 305.67, ("large", "pup"): 318.31, ("large", "mla"): 310.57,
         ("base", "naive"): 87.69, ("base", "pup"): 97.64, ("base", "mla"): 92.59}
FACTORY = {"naive": setr_naive, "pup": setr_pup, "mla": setr_mla}


def _meta(decoder: str, size: str, **kw) -> SETR:
    with torch.device("meta"):
        return FACTORY[decoder](size, num_classes=kw.pop("num_classes", 150), img_size=kw.pop("img_size", 512), **kw)


@pytest.mark.parametrize("size, decoder", list(PAPER))
def test_paper_table2_params(size: str, decoder: str) -> None:
    model = _meta(decoder, size)
    parts = model.param_breakdown()
    assert parts["total"] == count_params(model)
    assert round(parts["total"] / 1e6, 2) == PAPER[(size, decoder)]


def test_itemisation_large() -> None:
    d = 1024
    vit_l_512 = 3 * 256 * d + d + d + 1025 * d + 24 * 12_596_224  # papers.md §2.5: no final LN
    conv_seg = 512 * 150 + 150
    naive = _meta("naive", "large").param_breakdown()
    assert naive["encoder (ViT)"] == vit_l_512 == 304_147_456
    assert naive["main head"] == 2 * d + (d * 256 + 256) + 2 * 256 + (256 * 150 + 150)
    assert naive["auxiliary heads"] == 3 * naive["main head"]
    assert naive["unused conv_seg"] == 4 * conv_seg
    pup = _meta("pup", "large").param_breakdown()
    assert pup["unused conv_seg"] == 5 * conv_seg
    assert pup["auxiliary heads"] == 4 * (2 * d + (9 * d * 256 + 256) + 2 * 256 + (256 * 150 + 150))
    mla = _meta("mla", "large").param_breakdown()
    assert mla["MLA neck"] == 4 * (2 * d + d * 256 + 2 * 256 + 9 * 256 * 256 + 2 * 256)
    assert mla["main head"] == 4 * (9 * 256 * 128 + 256 + 9 * 128 * 128 + 256) + 9 * 512 * 150 + 150
    assert mla["auxiliary heads"] == 4 * 256 * 150


def test_without_aux_and_conv_seg() -> None:
    # papers.md §2.5: no aux heads -> 304.53 / 308.40 / 310.11 M (main conv_seg still counted)
    for decoder, want in (("naive", 304.53), ("pup", 308.40), ("mla", 310.11)):
        assert round(count_params(_meta(decoder, "large", aux=False)) / 1e6, 2) == want
    bare = _meta("naive", "large", aux=False, conv_seg=False)
    assert count_params(bare) == 304_147_456 + 303_510


def test_cityscapes_configuration() -> None:
    # papers.md §2.5: 768×768, 19 classes, with aux -> 306.58 / 319.11 / 310.81 M
    for decoder, want in (("naive", 306.58), ("pup", 319.11), ("mla", 310.81)):
        assert round(count_params(_meta(decoder, "large", num_classes=19, img_size=768)) / 1e6, 2) == want


@pytest.mark.parametrize("decoder, n_aux", [("naive", 3), ("pup", 4), ("mla", 4)])
def test_tiny_forward_train_and_eval(decoder: str, n_aux: int) -> None:
    model = FACTORY[decoder]("tiny", num_classes=6, img_size=64)
    x = torch.randn(2, 3, 64, 64)
    out = model.train()(x)
    assert set(out) == {"out", "aux"} and len(out["aux"]) == n_aux
    assert out["out"].shape == (2, 6, 64, 64) and all(a.shape == (2, 6, 64, 64) for a in out["aux"])
    logits = model.eval()(x)
    assert isinstance(logits, torch.Tensor) and logits.shape == (2, 6, 64, 64)
    assert isinstance(FACTORY[decoder]("tiny", num_classes=6, img_size=64, aux=False).train()(x), torch.Tensor)


def test_decoder_resolutions_at_patch_16() -> None:
    cfg = dict(embed_dim=32, depth=4, num_heads=4, head_channels=8, mla_channels=8, mlahead_channels=4,
               conv_seg=False, img_size=64, num_classes=3, aux_indices=(1, 3), mla_indices=(0, 1, 2, 3))
    x = torch.randn(1, 3, 64, 64)
    for decoder, scale in (("naive", 1), ("pup", 16), ("mla", 4)):
        model = SETR(SETRConfig(decoder=decoder, **cfg)).eval()
        grid = model.encoder.grid_for(x)
        tokens = [z[:, 1:] for z in model.encoder.forward_layers(x)]
        if decoder == "mla":
            raw = model.decode_head(model.neck(tokens, grid))
        else:
            raw = model.decode_head(tokens[-1], grid)
        assert raw.shape == (1, 3, 4 * scale, 4 * scale)


def test_mla_neck_is_top_down_cumulative() -> None:
    model = setr_mla("tiny", num_classes=6, img_size=64).eval()
    neck = model.neck
    for s in neck.smooth:  # make the 3×3 stage the identity to expose the sums
        s[0].weight.data.zero_()
        s[0].weight.data[:, :, 1, 1] = torch.eye(s[0].weight.shape[0])
        s[1].eval()
        s[1].running_mean.zero_(); s[1].running_var.fill_(1 - s[1].eps); s[1].weight.data.fill_(1); s[1].bias.data.zero_()
    feats = [torch.randn(1, 64, 64) for _ in range(4)]
    lateral = [p(torch.nn.functional.layer_norm(f, (64,), n.weight, n.bias, n.eps).transpose(1, 2).reshape(1, 64, 8, 8))
               for f, n, p in zip(feats, neck.norm, neck.proj)]
    out = neck(feats, (8, 8))
    relu = torch.relu
    torch.testing.assert_close(out[3], relu(lateral[3]))
    torch.testing.assert_close(out[0], relu(lateral[0] + lateral[1] + lateral[2] + lateral[3]))


def test_errors() -> None:
    model = setr_naive("tiny", num_classes=6, img_size=64)
    with pytest.raises(ValueError, match="divisible by the patch size 8"):
        model(torch.randn(1, 3, 60, 64))
    with pytest.raises(ValueError, match="expected an input of 64x64"):
        model(torch.randn(1, 3, 72, 72))
    with pytest.raises(ValueError, match="one of"):
        setr_pup("huge")
    with pytest.raises(ValueError, match="patch size in \\(2, 4, 8, 16\\)"):
        setr_pup("tiny", num_classes=6, img_size=96, patch_size=32)
    with pytest.raises(ValueError, match="layer indices in \\[0, 4\\)"):
        setr_naive("tiny", num_classes=6, img_size=64, aux_indices=(3, 4))
    dynamic = setr_naive("tiny", num_classes=6, img_size=64, dynamic_img_size=True).eval()
    assert dynamic(torch.randn(1, 3, 96, 80)).shape == (1, 6, 96, 80)


def _block_token_counts(model, x):
    counts = []
    hooks = [b.register_forward_hook(lambda m, a, out: counts.append(out.shape[1]))
             for b in model.encoder.blocks]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return counts


@pytest.mark.parametrize("decoder, enters", [("naive", True), ("pup", True), ("mla", False)])
def test_class_token_enters_the_blocks_as_the_official_code_does(decoder, enters):
    """Official VIT (Naive/PUP) keeps the class token through the blocks; VIT_MLA drops it
    after the position embeddings (``x = x[:, 1:]``), so changing it cannot change MLA's output."""
    torch.manual_seed(0)
    model = {"naive": setr_naive, "pup": setr_pup, "mla": setr_mla}[decoder](
        "tiny", num_classes=3, img_size=32, aux=False).eval()
    x = torch.randn(1, 3, 32, 32)
    n = (32 // 8) ** 2
    assert _block_token_counts(model, x) == [n + 1 if enters else n] * 4
    with torch.no_grad():
        before = model(x)
        model.encoder.cls_token.add_(1.0)
        after = model(x)
    assert torch.equal(before, after) is (not enters)
