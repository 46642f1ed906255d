"""The predict-then-measure checks (one per chapter).

A prediction check passes the reasoning's answer, reports ``...`` as not implemented, and fails a
plausible wrong prediction with a hint. Timings are compared by order only, so the chapter-03
check passes a right prediction on any machine (the measurement is reported, not held against it).
"""
from __future__ import annotations

import pytest

from tutorial_lib import checks
from tutorial_lib.checks import basics, compare, deeplab, segformer_layers, segformer_model, transformers


def _measure(name):
    return {
        "01": lambda: checks.measure_background_baseline(),
        "02": lambda: checks.measure_receptive_field(deeplab.PREDICT_RF_STACK),
        "03": lambda: checks.measure_separable_costs(rounds=2),
        "04": lambda: [checks.measure_aspp_taps(s, r) for s, r in deeplab.PREDICT_ASPP_CASES],
        "05": lambda: checks.measure_decoder_shapes(),
        "06": lambda: {256: checks.measure_vit_block_macs(256), 512: checks.measure_vit_block_macs(512)},
        "07": lambda: checks.measure_setr_shapes(512),
        "08": lambda: checks.measure_stage_sizes(*segformer_layers.PREDICT_STAGE_IMAGE),
        "09": lambda: checks.measure_attention_cost(32),
        "10": lambda: {m: checks.measure_border_tokens(*segformer_layers.PREDICT_BORDER_GRID, padding_mode=m)
                       for m in ("zeros", "circular")},
        "11": lambda: checks.measure_decoder_macs(),
        "12": lambda: checks.measure_model_costs(["fcn", "deeplabv3plus", "segformer"]),
        "13": lambda: checks.measure_uniform_erf_radii((4, 16)),
    }[name]()


def _right(name, m):
    return {
        "01": lambda: {"pixel_accuracy": m["background_share"], "mean_iou": m["background_share"] / m["classes_present"]},
        "02": lambda: 27,
        "03": lambda: {"lowest_intensity": "depthwise", "slowest_per_mac": "depthwise", "time_ratio": "higher"},
        "04": lambda: [9, 1, 4],
        "05": lambda: {"decoder": (16, 16), "upsampling_factor_after_decoder": 4},
        "06": lambda: {"attention_products": 16, "linear": 4},
        "07": lambda: {"tokens": 1024, "pup_output": (512, 512)},
        "08": lambda: [(10, 13), (5, 7), (3, 4), (2, 2)],
        "09": lambda: {"attention_factor": 64, "layer_factor_smaller": True},
        "10": lambda: {"zeros": 26, "circular": 0},
        "11": lambda: {"largest": "linear_fuse", "share": 0.83},
        "12": lambda: {"most_params": max(m, key=lambda k: m[k]["params"]),
                       "most_macs": max(m, key=lambda k: m[k]["macs"]),
                       "same_model": max(m, key=lambda k: m[k]["params"]) == max(m, key=lambda k: m[k]["macs"])},
        "13": lambda: 2.0,
    }[name]()


#: a plausible wrong prediction and the words its hint must contain
WRONG = {
    "01": ({"pixel_accuracy": 0.76, "mean_iou": 0.76}, "that is the pixel accuracy"),
    "02": (15, "as if the first layer had no stride"),
    "03": ({"lowest_intensity": "pointwise", "slowest_per_mac": "standard", "time_ratio": "equal"}, "MACs per byte"),
    "04": ([9, 9, 9], "degenerates to its centre tap"),
    "05": ({"decoder": (4, 4), "upsampling_factor_after_decoder": 16}, "encoder's output"),
    "06": ({"attention_products": 4, "linear": 2}, "scaled with the side"),
    "07": ({"tokens": 32, "pup_output": (32, 32)}, "along one side"),
    "08": ([(9, 12), (4, 6), (2, 3), (1, 1)], "rounded down"),
    "09": ({"attention_factor": 8, "layer_factor_smaller": False}, "sr²"),
    "10": ({"zeros": 30, "circular": 26}, "counted twice"),
    "11": ({"largest": "linear_pred", "share": 0.3}, "150 classes"),
    "12": ({"most_params": "fcn", "most_macs": "fcn", "same_model": True}, "different resolutions"),
    "13": (4.0, "theoretical field's growth"),
}
CHECKS = {"01": basics.check_predict_background_baseline, "02": deeplab.check_predict_receptive_field,
          "03": deeplab.check_predict_separable_speed, "04": deeplab.check_predict_aspp_taps,
          "05": deeplab.check_predict_decoder_shapes, "06": transformers.check_predict_attention_growth,
          "07": transformers.check_predict_setr_shapes, "08": segformer_layers.check_predict_stage_sizes,
          "09": segformer_layers.check_predict_attention_cost, "10": segformer_layers.check_predict_border_tokens,
          "11": segformer_model.check_predict_decoder_macs, "12": compare.check_predict_model_costs,
          "13": compare.check_predict_erf_growth}
WRONG["10"] = ({"zeros": 30, "circular": 26}, "do not count them twice")


@pytest.fixture(scope="module")
def measured():
    return {name: _measure(name) for name in CHECKS}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_prediction_check(name, measured, capsys):
    m = measured[name]
    CHECKS[name](_right(name, m), m)
    with pytest.raises(AssertionError) as err:
        CHECKS[name](WRONG[name][0], m)
    assert WRONG[name][1] in str(err.value)
    stub = ... if name in ("02", "13") else ({k: ... for k in _right(name, m)} if isinstance(_right(name, m), dict)
                                             else [...] * len(_right(name, m)))
    with pytest.raises(AssertionError, match="not implemented"):
        CHECKS[name](stub, m)


def test_mix_ffn_scaffold_uses_the_librarys_class_and_its_padding():
    zero, circ = checks.position_probe("zeros"), checks.position_probe("circular")
    assert circ["distinct"] == 1 and zero["distinct"] > 1 and zero["r2"] > circ["r2"] + 0.2
    with pytest.raises(ValueError):
        checks.mix_ffn_with_padding(8, 32, "circle")
