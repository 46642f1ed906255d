"""count_macs against analytic counts; count_params; shape_trace."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tutorial_lib.profiling import count_macs, count_macs_meta, count_params, shape_trace


@pytest.mark.parametrize("cin,cout,k,stride,groups,h,w", [
    (3, 8, 3, 1, 1, 16, 16), (8, 16, 5, 2, 1, 15, 21), (16, 16, 3, 1, 16, 9, 9), (6, 4, 1, 1, 2, 7, 5)])
def test_conv_macs_equal_analytic(cin, cout, k, stride, groups, h, w):
    conv = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups)
    x = torch.randn(2, cin, h, w)
    out = conv(x)
    expected = 2 * out.shape[-2] * out.shape[-1] * cout * (cin // groups) * k * k  # batch 2, bias not counted
    assert count_macs(conv, x).total == expected


class SDPABlock(nn.Module):
    """Projections + SDPA: the pieces an attention layer is made of."""

    def __init__(self, dim=32, heads=4):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)  # (B, h, N, d)
        return self.proj(y.transpose(1, 2).reshape(b, n, c))


def test_sdpa_attention_block_macs_equal_analytic():
    b, n, c = 2, 50, 32
    block = SDPABlock(c, 4)
    macs = count_macs(block, torch.randn(b, n, c)).total
    linear = b * n * c * 3 * c + b * n * c * c
    attention = 2 * b * n * n * c  # QKᵀ and AV over all heads: 2·N²·C per image
    assert macs == linear + attention


def test_sdpa_with_different_key_length_and_value_dim():
    class Cross(nn.Module):
        def forward(self, q, k, v):
            return F.scaled_dot_product_attention(q, k, v)

    q, k, v = torch.randn(1, 2, 10, 8), torch.randn(1, 2, 7, 8), torch.randn(1, 2, 7, 5)
    assert count_macs(Cross(), q, k, v).total == 2 * 10 * 7 * (8 + 5)


def test_elementwise_policy_is_explicit():
    model = nn.Sequential(nn.Conv2d(3, 4, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Upsample(scale_factor=2, mode="bilinear"))
    x = torch.randn(1, 3, 8, 8)
    default = count_macs(model, x)
    assert default.total == 3 * 4 * 64 and not default.uncounted
    assert count_macs(model, x, include_elementwise=True).total > default.total


def test_unknown_operator_warns():
    class Odd(nn.Module):
        def forward(self, x):
            return torch.linalg.inv(x)

    with pytest.warns(UserWarning, match="no MAC rule"):
        count_macs(Odd(), torch.eye(3)[None].repeat(2, 1, 1))


def test_count_params_and_trainable():
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    assert count_params(model) == 4 * 3 + 3 + 2 * 3  # BN running stats are buffers, not counted
    model[0].weight.requires_grad_(False)
    assert count_params(model, trainable_only=True) == 3 + 6


def test_shape_trace_lists_outputs_in_call_order():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten())
    trace = shape_trace(model, torch.randn(1, 3, 8, 8))
    assert [r[0] for r in trace.rows] == ["0", "1", "2"]
    assert trace.rows[0][2] == "(1, 4, 4, 4)" and trace.rows[2][2] == "(1, 64)"
    assert "output shape" in repr(trace) and "<table>" in trace._repr_html_()


def test_bad_inputs():
    with pytest.raises(ValueError, match="nn.Module"):
        count_macs(lambda x: x, torch.zeros(1))
    with pytest.raises(ValueError, match="at least one input"):
        count_macs(nn.Identity())
    with pytest.raises(ValueError, match="no submodule"):
        shape_trace(nn.Sequential(nn.Identity()), torch.zeros(1), names=["nope"])


def test_shape_trace_lists_the_children_of_an_iterated_container():
    """ViT iterates ``encoder.blocks`` instead of calling it: its blocks are listed in its place,
    while a container that is called keeps one row (its children are not added)."""
    from tutorial_lib.models.setr import setr_naive

    model = setr_naive("tiny", num_classes=3, img_size=32, aux=False).eval()
    rows = shape_trace(model, torch.randn(1, 3, 32, 32), depth=2).rows
    names = [r[0] for r in rows]
    assert [n for n in names if n.startswith("encoder.blocks")] == [f"encoder.blocks.{i}" for i in range(4)]
    assert all(r[2] == "(1, 17, 64)" for r in rows if r[0].startswith("encoder.blocks."))
    called = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU())
    wrapper = nn.Sequential(called)
    assert [r[0] for r in shape_trace(wrapper, torch.randn(1, 3, 4, 4), depth=1).rows] == ["0"]


@pytest.mark.parametrize("name", ["setr_pup", "setr_mla", "segformer_b0"])
def test_count_macs_meta_counts_attention_like_count_macs(name):
    """count_macs_meta sees F.scaled_dot_product_attention (a function, not a module):
    totals, operators and the per-module split equal fvcore's count_macs."""
    from tutorial_lib.models import segformer, setr

    torch.manual_seed(0)
    if name == "segformer_b0":
        model = segformer.segformer_b0(num_classes=6).eval()
    else:
        model = getattr(setr, name)("tiny", num_classes=6, img_size=64, aux=False).eval()
    traced = count_macs(model, torch.randn(1, 3, 64, 64))
    counted = count_macs_meta(model, (1, 3, 64, 64))
    assert counted.total == traced.total
    assert counted.by_operator == traced.by_operator
    assert counted.by_module["encoder"] == traced.by_module["encoder"]
    assert counted.by_operator["scaled_dot_product_attention"] > 0


# --- time_modules: interleaved rounds, minimum and spread --------------------------


def test_time_modules_warms_up_interleaves_and_restores_threads():
    from tutorial_lib.profiling import Timing, time_modules

    calls = []

    def make(name):
        def call(x):
            calls.append(name)
            return x

        return call

    threads = torch.get_num_threads()
    out = time_modules({"a": make("a"), "b": make("b")}, 1, rounds=4, warmup=2)
    assert torch.get_num_threads() == threads
    # warm-up calls first (per module), then rounds that alternate a, b, a, b, ...
    assert calls == ["a", "a", "b", "b"] + ["a", "b"] * 4
    assert set(out) == {"a", "b"}
    for timing in out.values():
        assert isinstance(timing, Timing) and timing.rounds == 4
        assert 0 <= timing.cpu and 0 < timing.wall <= timing.median
        assert timing.spread >= 1


def test_time_modules_takes_the_minimum_and_separates_cpu_from_wall(monkeypatch):
    from tutorial_lib import profiling

    clock = {"wall": 0.0, "cpu": 0.0}
    # (wall, cpu) per call: the thread computes for 10 ms; in round 2 a busy machine
    # deschedules it (wall 0.5 s, cpu unchanged), in round 4 it also slows it
    calls = iter([(0.02, 0.010), (0.5, 0.010), (0.02, 0.011), (0.03, 0.012), (0.02, 0.010)])
    monkeypatch.setattr(profiling.time, "perf_counter", lambda: clock["wall"])
    monkeypatch.setattr(profiling.time, "thread_time", lambda: clock["cpu"])

    def module(x):
        w, c = next(calls)
        clock["wall"] += w
        clock["cpu"] += c

    t = profiling.time_modules({"m": module}, 0, rounds=5, warmup=0, threads=None)["m"]
    assert t.cpu == pytest.approx(0.010) and t.wall == pytest.approx(0.02)
    assert t.median == pytest.approx(0.02)
    assert t.busy == pytest.approx(2.0) and t.spread == pytest.approx(1.0)


@pytest.mark.parametrize("kw, match", [
    (dict(rounds=0), "rounds"),
    (dict(warmup=-1), "warmup"),
])
def test_time_modules_refuses_bad_arguments(kw, match):
    from tutorial_lib.profiling import time_modules

    with pytest.raises(ValueError, match=match):
        time_modules({"m": lambda x: x}, 0, **kw)
    with pytest.raises(ValueError, match="at least one"):
        time_modules({}, 0)


def test_shape_trace_counts_equal_shapes_in_a_list() -> None:
    # a module returning four maps of one shape prints the shape once, counted
    import torch.nn as nn

    from tutorial_lib.profiling import shape_trace

    class Four(nn.Module):
        def forward(self, x):
            return [x, x, x, x]

    class Two(nn.Module):
        def forward(self, x):
            return (x, x[:, :1])

    model = nn.Sequential(Four())
    rows = shape_trace(model, torch.zeros(1, 2, 3), depth=1)
    assert "4 × (1, 2, 3)" in str(rows)
    rows = shape_trace(nn.Sequential(Two()), torch.zeros(1, 2, 3), depth=1)
    assert "[(1, 2, 3), (1, 1, 3)]" in str(rows)
