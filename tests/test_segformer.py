"""SegFormer model: configurations, the paper's Table 1 (parameters and MACs), the folded decoder."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tutorial_lib.layers.all_mlp_decoder import AllMLPDecoder, FoldedAllMLPDecoder, fold_all_mlp_decoder
from tutorial_lib.models import segformer as sf
from tutorial_lib.profiling import count_macs, count_params

VARIANTS = ["b0", "b1", "b2", "b3", "b4", "b5"]
FACTORIES = {v: getattr(sf, f"segformer_{v}") for v in VARIANTS}
# Paper Table 1a / Table 2 (Xie et al., 2021): total parameters (M) and ADE20K "Flops" (G MACs),
# 512×512 for B0–B4 and 640×640 for B5.
PAPER_PARAMS_M = {"b0": 3.8, "b1": 13.7, "b2": 27.5, "b3": 47.3, "b4": 64.1, "b5": 84.7}
PAPER_ADE_GMACS = {"b0": 8.4, "b1": 15.9, "b2": 62.4, "b3": 79.0, "b4": 95.7, "b5": 183.3}
ADE_SIZE = {"b0": 512, "b1": 512, "b2": 512, "b3": 512, "b4": 512, "b5": 640}
# Exact counts from the module definitions (papers.md §1.5): encoder, and total without the
# official code's unused conv_seg (= Hugging Face's count with 150 classes).
ENCODER_PARAMS = {"b0": 3_319_392, "b1": 13_151_424, "b2": 24_196_288, "b3": 44_072_128,
                  "b4": 60_842_688, "b5": 81_443_008}
TOTAL_PARAMS = {"b0": 3_752_694, "b1": 13_715_798, "b2": 27_461_974, "b3": 47_337_814,
                "b4": 64_108_374, "b5": 84_708_694}
# The official model (NVlabs) also holds mmseg's unused ``conv_seg = Conv2d(128, 150, 1)``.
OFFICIAL_PARAMS = {"b0": 3_772_044, "b1": 13_735_148, "b2": 27_481_324, "b3": 47_357_164,
                   "b4": 64_127_724, "b5": 84_728_044}


def meta_model(variant: str, **kw) -> sf.SegFormer:
    with torch.device("meta"):
        return FACTORIES[variant](**kw)


@pytest.mark.parametrize("variant", VARIANTS)
def test_parameter_counts_match_paper_table(variant):
    model = meta_model(variant)
    total, encoder = count_params(model), count_params(model.encoder)
    assert encoder == ENCODER_PARAMS[variant]
    assert total == TOTAL_PARAMS[variant]
    conv_seg = 128 * 150 + 150  # the official BaseDecodeHead's unused Conv2d(channels=128, 150, 1)
    assert total + conv_seg == OFFICIAL_PARAMS[variant]
    assert round(total / 1e6, 1) == PAPER_PARAMS_M[variant]  # ours rounds to the paper's number
    assert abs(total / 1e6 - PAPER_PARAMS_M[variant]) <= 0.1


@pytest.mark.parametrize("variant", VARIANTS)
def test_ade20k_macs_match_paper_table(variant):
    config = sf.segformer_config(variant)
    size = ADE_SIZE[variant]
    macs = sf.segformer_macs(config, size, size, conv_bias=True)  # mmcv's convention, as the paper
    assert abs(macs / 1e9 - PAPER_ADE_GMACS[variant]) <= 0.1
    no_bias = sf.segformer_macs(config, size, size)  # count_macs' policy: at most 0.2 G lower
    assert 0 < macs - no_bias < 0.2e9


def test_b5_coco_stuff_macs_at_512():
    assert abs(sf.segformer_macs(sf.segformer_config("b5"), 512, 512, conv_bias=True) / 1e9 - 111.6) <= 0.1


def test_conv_bias_term_counts_every_biased_conv_output():
    """Independent check of the ``conv_bias`` term: one op per output element of biased convs."""
    model = sf.segformer_b1(num_classes=11).eval()
    counted = []

    def hook(module, args, out):
        if module.bias is not None:
            counted.append(out.numel())

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model(torch.randn(1, 3, 96, 80))
    for h in handles:
        h.remove()
    cfg = model.config
    assert sf.segformer_macs(cfg, 96, 80, conv_bias=True) - sf.segformer_macs(cfg, 96, 80) == sum(counted)


def test_analytic_macs_equal_count_macs_b0_at_512():
    model = sf.segformer_b0().eval()
    assert count_macs(model, torch.randn(1, 3, 512, 512)).total == sf.segformer_macs(model.config, 512, 512)


@pytest.mark.parametrize("config", [
    sf.segformer_config("b0", num_classes=19),
    sf.segformer_config("b1", num_classes=7),
    sf.segformer_config("b2", depths=(1, 2, 2, 1), num_classes=7),  # B2–B5 widths and C=768, fewer blocks
], ids=["b0", "b1", "b2-shallow"])
def test_analytic_macs_equal_count_macs_small_odd_input(config):
    """The analytic count is linear in each stage's depth, so a shallow B2 covers B2–B5."""
    model = sf.SegFormer(config).eval()
    x = torch.randn(1, 3, 97, 131)
    assert count_macs(model, x).total == sf.segformer_macs(config, 97, 131)
    assert count_macs(model.fold_decoder(), x).total == sf.segformer_macs(config, 97, 131, folded=True)


def test_released_configuration():
    for v in VARIANTS:
        c = sf.segformer_config(v)
        assert c.mlp_ratios == (4, 4, 4, 4)  # the released code, not Table 6's (8, 8, 4, 4)
        assert c.sr_ratios == (8, 4, 2, 1) and c.num_heads == (1, 2, 5, 8)
        assert c.decoder_dim == (256 if v in ("b0", "b1") else 768)
        assert c.layer_norm_eps == 1e-6
    model = meta_model("b0")
    block = model.encoder.stages[0].blocks[0]
    assert block.norm1.eps == 1e-6 and model.encoder.stages[0].norm.eps == 1e-6
    assert model.encoder.stages[0].patch_embed.norm.eps == 1e-5  # default eps, as the official code
    rates = [b.drop_path.p for s in model.encoder.stages for b in s.blocks]
    assert rates[0] == 0.0 and math.isclose(rates[-1], 0.1, rel_tol=1e-6) and rates == sorted(rates)


@settings(max_examples=8, deadline=None)
@given(h=st.integers(29, 90), w=st.integers(29, 90))
def test_logits_at_quarter_resolution(h, w):
    torch.manual_seed(0)
    model = sf.SegFormer(sf.SegFormerConfig(embed_dims=(8, 16, 24, 32), depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 2),
                                            decoder_dim=16, num_classes=3)).eval()
    out = model(torch.randn(2, 3, h, w))
    assert out.shape == (2, 3, math.ceil(h / 4), math.ceil(w / 4))


def test_min_input_size():
    model = sf.segformer_b0()
    assert model.min_input_size == 29
    model.eval()(torch.randn(1, 3, 29, 29))
    with pytest.raises(ValueError, match="height and width >= 29"):
        model(torch.randn(1, 3, 28, 64))


def _randomise_bn(decoder: AllMLPDecoder) -> None:
    with torch.no_grad():
        bn = decoder.norm
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.normal_()
        bn.bias.normal_()


@pytest.mark.parametrize("size", [(256, 256), (173, 251)])
def test_folded_decoder_equals_paper_decoder(size):
    model = sf.segformer_b0(num_classes=19).eval()
    _randomise_bn(model.decode_head)
    folded = model.fold_decoder()
    assert isinstance(folded.decode_head, FoldedAllMLPDecoder)
    assert isinstance(model.decode_head, AllMLPDecoder)  # the teaching model is unchanged
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        want, got = model(x), folded(x)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert (want - got).abs().max() < 1e-4 * want.abs().max()
    # and the fold really removes the fuse layer's cost
    cfg = model.config
    saved = sf.segformer_macs(cfg, *size) - sf.segformer_macs(cfg, *size, folded=True)
    n1 = math.ceil(size[0] / 4) * math.ceil(size[1] / 4)
    assert saved == n1 * 4 * cfg.decoder_dim ** 2


def test_folded_decoder_fails_if_bn_statistics_ignored():
    """The test above can fail: folding without BatchNorm gives different logits."""
    decoder = AllMLPDecoder((8, 16, 24, 32), embed_dim=16, num_classes=5).eval()
    _randomise_bn(decoder)
    feats = [torch.randn(1, c, s, s) for c, s in zip((8, 16, 24, 32), (16, 8, 4, 2))]
    folded = fold_all_mlp_decoder(decoder)
    torch.testing.assert_close(folded(feats), decoder(feats), atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        decoder.norm.running_mean.add_(1.0)
    assert not torch.allclose(folded(feats), decoder(feats), atol=1e-3)


def test_decoder_concatenation_order_is_c4_to_c1():
    decoder = AllMLPDecoder((4, 4, 4, 4), embed_dim=4, num_classes=2).eval()
    with torch.no_grad():
        w = torch.zeros(4, 16, 1, 1)
        w[:, 12:16] = torch.eye(4)[:, :, None, None]  # only the last slot of the concatenation
        decoder.linear_fuse.weight.copy_(w)
    feats = [torch.randn(1, 4, s, s) for s in (8, 4, 2, 1)]
    base = decoder(feats)
    feats[0] = feats[0] + 1.0  # stage 1 (c1) must feed the last slot
    assert not torch.allclose(decoder(feats), base)
    feats = [f.clone() for f in feats]
    feats[3] = feats[3] + 1.0  # stage 4 (c4) feeds the first slot, which has zero weight here
    before = decoder([feats[0], feats[1], feats[2], feats[3] - 1.0])
    torch.testing.assert_close(decoder(feats), before)


def test_training_step_and_dict_free_output():
    model = sf.SegFormer(sf.SegFormerConfig(embed_dims=(8, 16, 24, 32), depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 2),
                                            decoder_dim=16, num_classes=3))
    out = model.train()(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 3, 16, 16)
    out.sum().backward()
    assert model.encoder.stages[0].patch_embed.proj.weight.grad is not None


def test_bad_inputs_raise_value_errors():
    with pytest.raises(ValueError, match="depths: expected 4 values"):
        sf.SegFormerConfig(depths=(2, 2, 2))
    with pytest.raises(ValueError, match="divisible by its heads"):
        sf.SegFormerConfig(num_heads=(3, 2, 5, 8))
    with pytest.raises(ValueError, match="variant: expected one of"):
        sf.segformer_config("b9")
    with pytest.raises(ValueError, match="num_classes: expected a positive integer"):
        sf.segformer_b0(num_classes=0)
    model = sf.segformer_b0().eval()
    with pytest.raises(ValueError, match="expected 3 input channels"):
        model(torch.randn(1, 1, 64, 64))
    with pytest.raises(ValueError, match="already folded"):
        model.fold_decoder().fold_decoder()
    with pytest.raises(ValueError, match="list of 4 feature maps"):
        model.decode_head([torch.randn(1, 32, 8, 8)])
    with pytest.raises(ValueError, match="expected an AllMLPDecoder"):
        FoldedAllMLPDecoder.from_decoder(torch.nn.Linear(2, 2))


# -- the chapter-11 exercise check ---------------------------------------------------------------
def _student_decoder(order="c4..c1", align_corners=False, norm=True):
    class AllMLPDecoder(torch.nn.Module):
        def __init__(self, in_dims, embed_dim, num_classes, dropout=0.1):
            super().__init__()
            self.linear_c = torch.nn.ModuleList(torch.nn.Linear(c, embed_dim) for c in in_dims)
            self.linear_fuse = torch.nn.Conv2d(4 * embed_dim, embed_dim, 1, bias=False)
            self.norm = torch.nn.BatchNorm2d(embed_dim)
            self.dropout = torch.nn.Dropout2d(dropout)
            self.linear_pred = torch.nn.Conv2d(embed_dim, num_classes, 1)

        def forward(self, feats):
            size = feats[0].shape[-2:]
            maps = [torch.nn.functional.interpolate(lin(f.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(
                f.shape[0], -1, *f.shape[-2:]), size=size, mode="bilinear", align_corners=align_corners)
                for f, lin in zip(feats, self.linear_c)]
            x = self.linear_fuse(torch.cat(maps[::-1] if order == "c4..c1" else maps, 1))
            x = torch.relu(self.norm(x)) if norm else x
            return self.linear_pred(self.dropout(x))

    return AllMLPDecoder


def test_check_all_mlp_decoder_passes_solution_and_library(capsys):
    from tutorial_lib import checks

    checks.check_all_mlp_decoder(_student_decoder())
    checks.check_all_mlp_decoder(AllMLPDecoder)
    assert "all" in capsys.readouterr().out


@pytest.mark.parametrize("change, hint", [
    (dict(order="c1..c4"), "[c4, c3, c2, c1]"),
    (dict(align_corners=True), "align_corners=False"),
    (dict(norm=False), "BatchNorm2d"),
])
def test_check_all_mlp_decoder_names_the_mistake(change, hint):
    from tutorial_lib import checks

    with pytest.raises(AssertionError) as err:
        checks.check_all_mlp_decoder(_student_decoder(**change))
    assert hint in str(err.value)


def test_check_all_mlp_decoder_fails_stub():
    from tutorial_lib import checks

    class AllMLPDecoder(torch.nn.Module):
        def __init__(self, in_dims, embed_dim, num_classes, dropout=0.1):
            raise NotImplementedError

    with pytest.raises(AssertionError, match="not implemented"):
        checks.check_all_mlp_decoder(AllMLPDecoder)


def test_all_mlp_decoder_upsampled_maps_are_the_first_two_steps():
    # chapter 11 shows these maps: the decoder's forward must be exactly fuse ∘ concat of them
    from tutorial_lib.layers.all_mlp_decoder import AllMLPDecoder

    torch.manual_seed(0)
    dec = AllMLPDecoder((8, 16, 24, 32), embed_dim=12, num_classes=5, dropout=0.0).eval()
    feats = [torch.randn(2, c, 16 // 2**i, 16 // 2**i) for i, c in enumerate((8, 16, 24, 32))]
    maps = dec.upsampled_maps(feats)
    assert [tuple(m.shape) for m in maps] == [(2, 12, 16, 16)] * 4
    fused = dec.act(dec.norm(dec.linear_fuse(torch.cat(maps[::-1], dim=1))))
    assert torch.allclose(dec(feats), dec.linear_pred(fused), atol=1e-6)
    with pytest.raises(ValueError):
        dec.upsampled_maps(feats[:3])
