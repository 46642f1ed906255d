"""The capstone's model zoo, resolution sweeps, latency and Pareto front (tutorial_lib.compare)."""
from __future__ import annotations

import pytest
import torch

from tutorial_lib import compare
from tutorial_lib.compare import (CAPSTONE_MODELS, build_model, evaluate_at_resolutions, inference_state_dict,
                                  measure_latency, pareto_front, scenes_at)
from tutorial_lib.data import SyntheticScenes
from tutorial_lib.metrics import confusion_matrix, mean_iou
from tutorial_lib.models.vit import resize_pos_embed
from tutorial_lib.profiling import count_params


@pytest.mark.parametrize("name", list(CAPSTONE_MODELS))
def test_every_capstone_model_builds_small_and_segments_64px(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    assert 5e4 < count_params(model) < 1.2e6  # 0.1-1 M parameters: small checkpoints
    with torch.no_grad():
        out = model(torch.rand(2, 3, 64, 64))
    stride = 4 if name == "segformer" else 1  # SegFormer returns logits at 1/4 resolution
    assert out.shape == (2, 6, 64 // stride, 64 // stride)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", [n for n in CAPSTONE_MODELS if n.startswith("setr")])
def test_setr_trains_with_auxiliary_heads_and_ships_without(name):
    model = build_model(name, aux=True).train()
    out = model(torch.rand(2, 3, 64, 64))
    assert isinstance(out, dict) and len(out["aux"]) > 0
    state = inference_state_dict(model)
    assert not any(k.startswith("auxiliary_heads.") for k in state)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    shipped = build_model(name, aux=False)
    shipped.load_state_dict(state, strict=True)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(shipped.eval()(x), model.eval()(x), atol=5e-2, rtol=5e-2)  # float16 rounding


@pytest.mark.parametrize("size", [32, 48, 96, 128])
def test_setr_runs_at_other_sizes_with_interpolated_position_embeddings(size):
    torch.manual_seed(0)
    model = build_model("setr_pup").eval()
    x = torch.rand(1, 3, size, size)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (1, 6, size, size)
    # the interpolation the encoder does equals resize_pos_embed on the 8x8 grid of the 64-px model
    enc = model.encoder
    expected = resize_pos_embed(enc.pos_embed, (8, 8), (size // 8, size // 8), 1, "bilinear")
    tokens = enc.patch_embed(x)
    torch.testing.assert_close(enc._pos_embed(tokens, (size // 8, size // 8)) - torch.cat(
        [enc.cls_token, tokens], dim=1), expected)


def test_setr_at_its_training_size_is_a_fixed_size_model():
    from tutorial_lib.models.setr import setr_pup

    torch.manual_seed(0)
    dynamic = build_model("setr_pup").eval()
    fixed = setr_pup("tiny", num_classes=6, img_size=64, aux=False).eval()
    fixed.load_state_dict(dynamic.state_dict())
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(dynamic(x), fixed(x))
    with pytest.raises(ValueError, match="dynamic_img_size"):
        fixed(torch.rand(1, 3, 96, 96))


def test_scenes_at_renders_the_same_scenes():
    val = SyntheticScenes(4, size=64, seed=1)
    big = scenes_at(val, 128)
    assert (big.num_samples, big.seed, big.size) == (4, 1, (128, 128))
    for i in range(4):
        small_mask, big_mask = val[i][1], big[i][1]
        agree = (big_mask[::2, ::2] == small_mask).float().mean().item()  # pixel centres nearly coincide
        assert agree > 0.9
    with pytest.raises(ValueError, match="SyntheticScenes"):
        scenes_at(torch.utils.data.TensorDataset(torch.zeros(1)), 64)
    with pytest.raises(ValueError, match="positive"):
        scenes_at(val, 0)


class _Background(torch.nn.Module):
    """Predicts class 0 everywhere: its mIoU is known from the masks alone."""

    def forward(self, x):
        logits = torch.zeros(x.shape[0], 6, x.shape[2], x.shape[3])
        logits[:, 0] = 1.0
        return logits


def test_evaluate_at_resolutions_scores_each_size_against_its_own_labels():
    val = SyntheticScenes(6, size=64, seed=1)
    results = evaluate_at_resolutions(_Background(), val, [32, 80])
    assert list(results) == [32, 80]
    for size, result in results.items():
        masks = torch.stack([scenes_at(val, size)[i][1] for i in range(6)])
        background = (masks == 0).double().mean().item()
        present = len(torch.unique(masks))
        assert result.miou == pytest.approx(background / present)  # IoU_bg = background share, others 0
        assert result.miou == pytest.approx(mean_iou(confusion_matrix(torch.zeros_like(masks), masks, 6)))
    with pytest.raises(ValueError, match="at least one size"):
        evaluate_at_resolutions(_Background(), val, [])


def test_measure_latency_is_positive_and_restores_the_mode():
    model = build_model("fcn").train()
    seconds = measure_latency(model, torch.rand(1, 3, 32, 32), repeats=2)
    assert seconds > 0 and model.training
    with pytest.raises(ValueError, match="repeats"):
        measure_latency(model, torch.rand(1, 3, 32, 32), repeats=0)
    with pytest.raises(ValueError, match="4-D"):
        measure_latency(model, torch.rand(3, 32, 32))


def test_pareto_front():
    assert pareto_front([1, 2, 3], [0.5, 0.4, 0.7]) == [0, 2]
    assert pareto_front([5, 1, 3, 2], [0.9, 0.2, 0.8, 0.3]) == [1, 3, 2, 0]
    assert pareto_front([1, 1, 2], [0.3, 0.5, 0.6]) == [1, 2]
    assert pareto_front([1, 1, 2], [0.5, 0.5, 0.4]) == [0, 1]
    assert pareto_front([], []) == []
    with pytest.raises(ValueError, match="as many costs as scores"):
        pareto_front([1, 2], [0.5])


def test_bad_names_and_missing_checkpoints_raise_value_errors():
    with pytest.raises(ValueError, match="expected one of"):
        build_model("unet")
    with pytest.raises(ValueError, match="make checkpoints"):
        with compare.checkpoint_path("no_such_model.safetensors"):
            pass


def test_background_baseline_scores_the_all_background_prediction():
    """Predicting class 0 everywhere: IoU of background = its pixel share, every other
    class present in the target scores 0; a class outside [0, K) is refused."""
    import pytest

    from tutorial_lib.compare import background_baseline

    mask = torch.zeros(4, 4, dtype=torch.long)
    mask[:2, :2] = 1  # a quarter of the pixels are class 1
    result = background_baseline([(None, mask)], num_classes=3)
    assert result.pixel_accuracy == 0.75
    assert result.miou == pytest.approx((0.75 + 0.0) / 2)  # class 2 is absent everywhere
    with pytest.raises(ValueError, match="background class"):
        background_baseline([(None, mask)], num_classes=3, background=3)


def test_measure_latencies_interleaves_rounds_and_reports_quartiles():
    from tutorial_lib.compare import Latency, measure_latencies

    models = {"a": torch.nn.Conv2d(3, 4, 3), "b": torch.nn.Identity()}
    out = measure_latencies(models, torch.rand(1, 3, 16, 16), rounds=3, repeats=2)
    assert set(out) == {"a", "b"}
    for lat in out.values():
        assert isinstance(lat, Latency) and 0 < lat.low <= lat.median <= lat.high
    with pytest.raises(ValueError, match="at least one model"):
        measure_latencies({}, torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="rounds"):
        measure_latencies(models, torch.rand(1, 3, 8, 8), rounds=0)
