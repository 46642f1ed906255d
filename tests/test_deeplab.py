"""DeepLabV3+: output shapes for odd sizes, Table 5 cost, the decoder, the small variant, bad inputs."""
import inspect

import pytest
import torch

from tutorial_lib.profiling import space_to_batch_extra_macs
from tutorial_lib.models.deeplab import (DeepLabConfig, DeepLabV3Plus, Decoder, deeplabv3plus_small,
                                         deeplabv3plus_xception65)
from tutorial_lib.profiling import count_macs, count_macs_meta, count_params

# DeepLabV3+ Table 5 (Xception-65, train and eval output stride 16, 513×513), "Multiply-Adds".
PAPER_TABLE5 = {"no decoder": 68.00e9, "decoder": 89.76e9, "separable ASPP + decoder": 54.17e9}
SETTINGS = {"no decoder": dict(decoder=False), "decoder": dict(), "separable ASPP + decoder": dict(separable=True)}
# Our exact counts (count_macs policy: convolutions only, no bias, BN/pooling/upsampling zero) and
# parameter counts for 21 classes. Pinned so that they cannot drift silently.
OURS = {"no decoder": (64_920_260_288, 53_407_813), "decoder": (86_679_236_288, 54_711_461),
        "separable ASPP + decoder": (54_035_303_024, 41_055_413)}


def meta_model(**kwargs) -> DeepLabV3Plus:
    with torch.device("meta"):
        return DeepLabV3Plus(DeepLabConfig(**kwargs)).eval()


def test_factory_signature_and_defaults():
    sig = inspect.signature(deeplabv3plus_xception65)
    assert [(p.name, p.default) for p in sig.parameters.values()] == [
        ("num_classes", 21), ("output_stride", 16), ("separable", False)]
    with torch.device("meta"):
        model = deeplabv3plus_xception65()
    assert model.aspp.rates == (6, 12, 18) and model.decoder is not None
    assert model.backbone.low_level_channels == 256 and model.decoder.proj[0].out_channels == 48


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_table5_macs_and_params_at_513(setting):
    model = meta_model(**SETTINGS[setting])
    macs = count_macs_meta(model, (1, 3, 513, 513)).total
    assert (macs, count_params(model)) == OURS[setting]
    paper = PAPER_TABLE5[setting]
    # Our policy counts each output position once; TensorFlow computes atrous convolutions on maps
    # padded to a multiple of the rate (space_to_batch). With that added we are within 0.25% of every
    # Table 5 number (the rest: elementwise work our policy counts as zero); without it, within 5%.
    tf_like = macs + space_to_batch_extra_macs(model, (1, 3, 513, 513))
    assert abs(tf_like - paper) / paper < 0.0025
    assert 0 <= (paper - macs) / paper < 0.05


def test_decoder_cost_matches_the_paper_increment():
    with_decoder, without = OURS["decoder"][0], OURS["no decoder"][0]
    paper = PAPER_TABLE5["decoder"] - PAPER_TABLE5["no decoder"]
    assert abs((with_decoder - without) - paper) / paper < 0.001  # 21.76 B in both


@pytest.mark.parametrize("separable,decoder", [(False, True), (True, False)])
def test_meta_count_equals_fvcore_count_small_variant(separable, decoder):
    config = deeplabv3plus_small(separable=separable).config
    model = DeepLabV3Plus(DeepLabConfig(**{**config.__dict__, "decoder": decoder}))
    x = torch.randn(1, 3, 45, 37)
    assert count_macs_meta(model, tuple(x.shape)).total == count_macs(model, x).total


@pytest.mark.slow
def test_meta_count_equals_fvcore_count_xception65():
    model = deeplabv3plus_xception65(separable=True).eval()
    x = torch.randn(1, 3, 49, 41)
    assert count_macs_meta(model, tuple(x.shape)).total == count_macs(model, x).total


@pytest.mark.parametrize("os", [8, 16])
@pytest.mark.parametrize("size", [(513, 513), (97, 131)])
def test_small_variant_output_equals_input_size(os, size):
    model = deeplabv3plus_small(output_stride=os).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, *size)).shape == (1, 6, *size)


@pytest.mark.parametrize("os", [8, 16])
def test_xception65_output_equals_input_size_real_forward(os):
    model = deeplabv3plus_xception65(output_stride=os).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 97, 131)).shape == (1, 21, 97, 131)


@pytest.mark.parametrize("os", [8, 16])
@pytest.mark.parametrize("separable", [False, True])
def test_xception65_output_equals_input_size_513_meta(os, separable):
    model = meta_model(output_stride=os, separable=separable)
    assert model(torch.empty(1, 3, 513, 513, device="meta")).shape == (1, 21, 513, 513)


def test_no_decoder_is_deeplabv3():
    model = meta_model(decoder=False)
    assert model.decoder is None and model.classifier.in_channels == 256


def test_decoder_shapes_and_concat_width():
    decoder = Decoder(256, 256, 48, 256).eval()
    out = decoder(torch.randn(2, 256, 9, 5), torch.randn(2, 256, 33, 17))
    assert out.shape == (2, 256, 33, 17)
    assert decoder.fuse[0][0].in_channels == 256 + 48


def test_small_variant_trains_one_step():
    model = deeplabv3plus_small()
    x, y = torch.rand(2, 3, 64, 64), torch.randint(0, 6, (2, 64, 64))
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("call,match", [
    (lambda m: m(torch.randn(1, 1, 64, 64)), "expected 3 input channels"),
    (lambda m: m(torch.randn(3, 64, 64)), "4-D tensor"),
    (lambda m: m(torch.randn(1, 1, 3, 64, 64)), "4-D tensor"),
    (lambda m: m([torch.randn(1, 3, 64, 64)]), "torch.Tensor"),
    (lambda m: deeplabv3plus_small(output_stride=4), "output_stride"),
    (lambda m: deeplabv3plus_xception65(output_stride=12), "output_stride"),
    (lambda m: deeplabv3plus_small(num_classes=0), "num_classes"),
    (lambda m: m.decoder(torch.randn(1, 48, 4, 4), torch.randn(1, 7, 16, 16)), "low-level"),
])
def test_bad_inputs_raise_value_error(call, match):
    model = deeplabv3plus_small().eval()
    with pytest.raises(ValueError, match=match):
        call(model)
