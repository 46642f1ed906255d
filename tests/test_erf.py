"""Effective receptive fields: cases with known answers (Luo et al., 2016)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from tutorial_lib.erf import effective_receptive_field, erf_mass_curve, erf_radius, erf_support
from tutorial_lib.layers.atrous import receptive_field
from tutorial_lib.models.fcn import tiny_fcn


def _ones_stack(kernels, strides=None, dilations=None, padding=False) -> nn.Sequential:
    """Single-channel convolutions with all-one weights: gradients cannot cancel."""
    n = len(kernels)
    strides, dilations = strides or [1] * n, dilations or [1] * n
    layers = []
    for k, s, d in zip(kernels, strides, dilations):
        conv = nn.Conv2d(1, 1, k, stride=s, dilation=d, padding=d * (k // 2) if padding else 0, bias=False)
        nn.init.ones_(conv.weight)
        layers.append(conv)
    return nn.Sequential(*layers)


@pytest.mark.parametrize("k", [1, 3, 5, 7])
def test_single_conv_erf_is_exactly_its_kernel(k):
    torch.manual_seed(k)
    conv = nn.Conv2d(3, 1, k, padding=k // 2, bias=False)
    images = torch.rand(4, 3, 21, 21)
    erf = effective_receptive_field(conv, images, reduce="sum")
    assert erf_support(erf) == (k, k)
    c, r = 10, k // 2
    window = erf[c - r:c + r + 1, c - r:c + r + 1]
    torch.testing.assert_close(window, conv.weight[0].abs().sum(0).double(), rtol=1e-6, atol=1e-9)
    assert erf.sum() == pytest.approx(window.sum().item())  # nothing outside the k x k window


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([1, 2, 3, 5]), st.sampled_from([1, 2]), st.sampled_from([1, 2])),
                min_size=1, max_size=4))
def test_stacked_conv_erf_support_follows_the_formula(layers):
    kernels, strides, dilations = (list(v) for v in zip(*layers))
    k_eff = receptive_field(list(zip(kernels, strides, dilations)))  # 1 + sum d_i (k_i - 1) prod_{j<i} s_j
    size = k_eff + 8 * math.prod(strides)  # large enough for one valid output position
    images = torch.rand(2, 1, size, size)
    erf = effective_receptive_field(_ones_stack(kernels, strides, dilations), images, position=(0, 0),
                                    reduce="sum", upsample=False)
    assert erf_support(erf) == (k_eff, k_eff)


@pytest.mark.parametrize("n", [1, 2, 3, 6])
def test_uniform_stack_erf_is_the_n_fold_convolution(n):
    """Luo et al. §2.2: n stacked uniform 3x3 layers give the coefficients of (1 + z + z^2)^n per axis."""
    coeffs = np.array([1.0])
    for _ in range(n):
        coeffs = np.convolve(coeffs, [1.0, 1.0, 1.0])
    expected = torch.from_numpy(np.outer(coeffs, coeffs))
    size = 2 * n + 1 + 10
    erf = effective_receptive_field(_ones_stack([3] * n, padding=True), torch.rand(3, 1, size, size), reduce="sum")
    c = size // 2
    torch.testing.assert_close(erf[c - n:c + n + 1, c - n:c + n + 1], expected)
    assert erf.sum().item() == pytest.approx(expected.sum().item())


def test_erf_radius_grows_like_sqrt_depth_while_the_field_grows_linearly():
    radii = []
    for n in (4, 16):
        size = 2 * n + 1 + 4
        erf = effective_receptive_field(_ones_stack([3] * n, padding=True), torch.ones(1, 1, size, size), reduce="sum")
        radii.append(erf_radius(erf))
    assert radii[1] / radii[0] == pytest.approx(2.0, rel=0.15)  # sqrt(16/4) = 2, not 16/4 = 4


def test_erf_radius_of_known_distributions():
    point = torch.zeros(9, 9)
    point[4, 4] = 1.0
    assert erf_radius(point) == 0.0
    ring = point.clone()
    for r, c in ((4, 0), (4, 8), (0, 4), (8, 4)):
        ring[r, c] = 1.0  # 4/5 of the mass at distance 4
    assert erf_radius(ring, 0.9) == 4.0
    assert erf_radius(ring, 0.2) == 0.0
    assert erf_radius(ring, 0.8, center=(0.0, 4.0)) == pytest.approx(math.hypot(4, 4))  # 4 of 5 pixels
    assert erf_radius(ring, 0.9, center=(0.0, 4.0)) == 8.0  # the opposite pixel is needed too
    # isotropic Gaussian: radius holding a fraction f is sigma * sqrt(-2 ln(1 - f))
    sigma, size = 4.0, 81
    r = torch.arange(size, dtype=torch.float64) - size // 2
    gauss = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma ** 2))
    for f in (0.5, 0.9):
        assert erf_radius(gauss, f) == pytest.approx(sigma * math.sqrt(-2 * math.log(1 - f)), abs=0.5)


def test_mass_curve_is_sorted_and_ends_at_one():
    erf = torch.rand(12, 15)
    radii, cumulative = erf_mass_curve(erf)
    assert radii.numel() == 12 * 15
    assert bool((radii[1:] >= radii[:-1]).all()) and bool((cumulative[1:] >= cumulative[:-1] - 1e-15).all())
    assert cumulative[-1].item() == pytest.approx(1.0)


def test_model_erf_shape_and_no_parameter_gradients():
    torch.manual_seed(0)
    model = tiny_fcn().train()
    erf = effective_receptive_field(model, torch.rand(3, 3, 32, 32))
    assert erf.shape == (32, 32) and erf.dtype == torch.float64 and erf.sum() > 0
    assert model.training  # mode restored
    assert all(p.grad is None for p in model.parameters())


def test_per_channel_equals_sum_of_single_channel_erfs():
    torch.manual_seed(1)
    conv = nn.Conv2d(2, 3, 3, padding=1)
    images = torch.rand(2, 2, 9, 9)
    total = effective_receptive_field(conv, images)
    parts = sum(effective_receptive_field(conv, images, output=lambda m, x, c=c: m(x)[:, c:c + 1], reduce="sum")
                for c in range(3))
    torch.testing.assert_close(total, parts)


def test_predicted_takes_the_winning_channel_of_each_image():
    torch.manual_seed(2)
    conv = nn.Conv2d(1, 3, 3, padding=1, bias=False)
    images = torch.rand(4, 1, 9, 9)
    images[2:] *= -1  # channel 0 wins on positive images, channel 1 on negative ones
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0] = torch.rand(1, 3, 3) + 0.1
        conv.weight[1] = -(torch.rand(1, 3, 3) + 0.1)
        conv.weight[2, 0, 0, 0] = 0.01
    got = effective_receptive_field(conv, images, reduce="predicted")
    one = lambda c, x: effective_receptive_field(conv, x, output=lambda m, z: m(z)[:, c:c + 1], reduce="sum")
    torch.testing.assert_close(got, (one(0, images[:2]) + one(1, images[2:])) / 2)


def test_bad_inputs_raise_value_errors():
    conv = nn.Conv2d(1, 1, 3, padding=1)
    with pytest.raises(ValueError, match="expected an nn.Module"):
        effective_receptive_field(lambda x: x, torch.rand(1, 1, 5, 5))
    with pytest.raises(ValueError, match="4-D"):
        effective_receptive_field(conv, torch.rand(1, 5, 5))
    with pytest.raises(ValueError, match="position"):
        effective_receptive_field(conv, torch.rand(1, 1, 5, 5), position=(5, 0))
    with pytest.raises(ValueError, match="reduce"):
        effective_receptive_field(conv, torch.rand(1, 1, 5, 5), reduce="mean")
    with pytest.raises(ValueError, match=r"\(B, C, h, w\)"):
        effective_receptive_field(conv, torch.rand(1, 1, 5, 5), output=lambda m, x: m(x).flatten(1))
    with pytest.raises(ValueError, match="fraction"):
        erf_radius(torch.ones(3, 3), fraction=1.5)
    with pytest.raises(ValueError, match="non-negative"):
        erf_radius(-torch.ones(3, 3))
    with pytest.raises(ValueError, match="2-D"):
        erf_support(torch.ones(3))
    with pytest.raises(ValueError, match="positive total mass"):
        erf_radius(torch.zeros(3, 3))


# ----------------------------------------------------------------------------------------
# Per stage, at object pixels


def test_object_centres_pick_the_deepest_object_pixel_away_from_the_border():
    from tutorial_lib.erf import object_centres

    mask = torch.zeros(2, 12, 12, dtype=torch.int64)
    mask[0, 2:9, 3:10] = 1  # a 7×7 square: its centre is (5, 6)
    mask[1, 0:5, 0:12] = 2  # a band along the top edge: the border counts as a boundary
    mask[1, 8:11, 8:11] = 3
    assert object_centres(mask) == [(5, 6), (2, 2)]
    with pytest.raises(ValueError, match="no object pixel"):
        object_centres(torch.zeros(1, 4, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="integer label maps"):
        object_centres(torch.zeros(4, 4))


def test_stage_outputs_and_radii_at_positions():
    from tutorial_lib.compare import capstone_segformer
    from tutorial_lib.erf import erf_radii_at, stage_outputs
    from tutorial_lib.experiments import build_config

    torch.manual_seed(0)
    segformer = capstone_segformer().eval()
    outputs = stage_outputs(segformer)
    assert list(outputs) == ["stage1", "stage2", "stage3", "stage4", "logits"]
    x = torch.rand(2, 3, 32, 32)
    assert outputs["stage2"](segformer, x).shape == (2, 32, 4, 4)
    deeplab = build_config("deeplab_os8").eval()
    assert list(stage_outputs(deeplab)) == ["low_level", "backbone", "aspp", "logits"]
    radii = erf_radii_at(segformer, x, [(16, 16), (8, 20)], outputs["stage1"])
    assert set(radii) == {0.5, 0.9} and 0 < radii[0.5] <= radii[0.9]
    with pytest.raises(ValueError, match="one position per image"):
        erf_radii_at(segformer, x, [(1, 1)], outputs["stage1"])
    with pytest.raises(ValueError, match="SegFormer or DeepLabV3Plus"):
        stage_outputs(torch.nn.Conv2d(3, 3, 1))
