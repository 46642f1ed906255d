"""The diagrams' shape labels equal a shape trace of the library's modules (no stale pictures)."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from tutorial_lib import diagrams, models  # noqa: E402
from tutorial_lib.profiling import shape_trace  # noqa: E402


def _meta(factory, **kw):
    with torch.device("meta"):
        return factory(**kw).eval()


def _traced(model, size, names):
    """``{name: label}`` from :func:`shape_trace` (first call of each module), formatted as drawn."""
    x = torch.zeros(
        size if isinstance(size, tuple) else (1, 3, size, size), device="meta"
    )
    table = shape_trace(model, x, names=list(names))
    first = {}
    for name, _, shape, _ in table.rows:
        first.setdefault(name, shape)
    # "(1, 96, 8, 8)" -> "96×8×8"; "[(1, 2), (1, 3)]" -> "2, 3"
    return {
        n: ", ".join(
            "×".join(t.split(", ")[1:]) for t in re.findall(r"\(([^()]*)\)", s)
        )
        for n, s in first.items()
    }


def _check(d: diagrams.Diagram, model, size, prefix: str = "") -> None:
    names = {
        k[len(prefix) :]: v
        for k, v in d.labels.items()
        if k.startswith(prefix) and k[len(prefix) :] in dict(model.named_modules())
    }
    assert names, "the diagram labels no module"
    assert _traced(model, size, names) == names
    drawn = "\n".join(d.texts())
    for label in names.values():
        for part in label.split(", "):
            assert part in drawn, f"{part} is traced but not drawn"


def _layout_ok(d: diagrams.Diagram) -> None:
    """7 in wide, every text inside the figure and at least 8 pt as shown (100 dpi, 720 px
    PNG in a 680 px column)."""
    fig = d.fig
    assert fig.get_size_inches()[0] == pytest.approx(7.0)
    fig.canvas.draw()
    box = fig.bbox
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        for t in ax.texts:
            if not t.get_text().strip():
                continue
            assert t.get_fontsize() >= 8 * 720 / 680 - 1e-9
            e = t.get_window_extent(renderer)
            assert (
                e.x0 >= box.x0 - 1
                and e.x1 <= box.x1 + 1
                and e.y0 >= box.y0 - 1
                and e.y1 <= box.y1 + 1
            ), f"text {t.get_text()!r} is clipped"
    plt.close(fig)


def test_vit_pipeline():
    d = diagrams.vit_pipeline()
    _check(d, _meta(models.vit_base_patch16_224), 224)
    assert d.labels["pos_drop"] == "197×768"  # 196 patches + the class token
    _layout_ok(d)


def test_vit_pipeline_follows_the_model():
    from tutorial_lib.models.vit import ViTConfig, VisionTransformer

    small = VisionTransformer(
        ViTConfig(img_size=64, embed_dim=48, depth=3, num_heads=3, num_classes=10)
    )
    d = diagrams.vit_pipeline(small, img_size=64)
    assert d.labels["pos_drop"] == "17×48" and d.labels["head"] == "10"
    assert "3 × block" in d.texts()
    plt.close(d.fig)


def test_setr_decoders():
    d = diagrams.setr_decoders()
    for prefix, factory in (
        ("naive:", models.setr_naive),
        ("pup:", models.setr_pup),
        ("mla:", models.setr_mla),
    ):
        _check(d, _meta(factory, aux=False), 512, prefix)
    assert d.labels["pup:decode_head.conv_3"] == "256×256×256"
    _layout_ok(d)


def test_setr_mla_decoder():
    """Four streams traced from the model; the MAC split the chapter quotes (the 3×3
    classifier at 4× the token grid is most of MLA's decoder at 512)."""
    d = diagrams.setr_mla_decoder()
    _check(d, _meta(models.setr_mla, aux=False), 512)
    assert d.labels["neck.proj.3"] == "256×32×32"
    assert d.labels["decode_head.head5"] == "128×32×32"
    assert d.labels["decode_head.cls"] == "150×128×128"
    assert d.labels["auxiliary_heads.0"] == "150×32×32"  # traced in training mode
    assert "$Z^{24}$" in d.texts() and "$Z^{6}$" in d.texts()
    macs = {k: float(d.labels[f"macs:{k}"]) for k in ("neck", "head", "cls")}
    assert macs["cls"] == pytest.approx(11.3, abs=0.05)
    assert sum(macs.values()) == pytest.approx(16.6, abs=0.1)
    _layout_ok(d)


@pytest.mark.parametrize(
    "fn",
    [
        diagrams.segformer_overview,
        diagrams.all_mlp_decoder,
        diagrams.efficient_attention,
        diagrams.mix_ffn,
    ],
)
def test_segformer_diagrams(fn):
    d = fn()
    _check(d, _meta(models.segformer_b0), 512)
    _layout_ok(d)


def test_efficient_attention_reduction():
    d = diagrams.efficient_attention()
    p = "encoder.stages.0.blocks.0.attn"
    n = int(d.labels[p + ".q"].split("×")[0])
    nr = int(d.labels[p + ".kv"].split("×")[0])
    assert n == 128 * 128 and n // nr == 8**2 and d.labels["weights"] == f"{n}×{nr}"
    plt.close(d.fig)


def test_legend_uses_one_language():
    d = diagrams.all_mlp_decoder()
    texts = d.texts()
    for kind in ("tensor", "linear / MLP", "resample"):
        assert kind in texts
    plt.close(d.fig)


def test_fcn():
    d = diagrams.fcn()
    _check(d, _meta(models.tiny_fcn), 64)
    assert d.labels["classifier"] == "6×8×8"
    _layout_ok(d)


def test_deeplabv3plus_and_xception():
    d = diagrams.deeplabv3plus()
    _check(d, _meta(models.deeplabv3plus_xception65), 512)
    assert d.labels["backbone"] == "2048×32×32, 256×128×128"
    _layout_ok(d)
    d = diagrams.xception_flows()
    _check(d, _meta(models.xception65), 512)
    assert d.labels["middle_flow"] == "728×32×32"
    _layout_ok(d)


def test_aspp_and_separable():
    from tutorial_lib.layers.aspp import ASPP
    from tutorial_lib.layers.separable import SeparableConv2d

    d = diagrams.aspp()
    with torch.device("meta"):
        m = ASPP(2048, 256, (6, 12, 18)).eval()
    _check(d, m, (1, 2048, 32, 32))
    assert d.labels["concat"] == "1280×32×32"
    _layout_ok(d)
    d = diagrams.depthwise_separable()
    with torch.device("meta"):
        m = SeparableConv2d(3, 4, 3).eval()
    _check(d, m, (1, 3, 8, 8))
    assert (
        d.labels["dwconv.weight"] == "3×1×3×3"
        and d.labels["pwconv.weight"] == "4×3×1×1"
    )
    _layout_ok(d)


def test_dilated_kernel_taps_are_the_layers():
    from tutorial_lib.layers.atrous import sampled_offsets

    d = diagrams.dilated_kernel(rates=(1, 2, 4), grid=11)
    for r, taps in d.taps.items():
        offsets = [5 + o for o in sampled_offsets(3, r)]
        assert sorted(taps) == sorted((i, j) for i in offsets for j in offsets)
    _layout_ok(d)


def test_overlap_patch_embed():
    d = diagrams.overlap_patch_embed()
    _check(d, _meta(models.segformer_b0), 512)
    _layout_ok(d)


def test_paper_sizes_round_the_upsampling():
    d = diagrams.deeplabv3plus(size=513)
    assert d.labels["decoder.fuse"] == "256×129×129"
    assert "↑4" in d.texts()  # 129 / 33 is "×4" to the stride-4 size, not 3
    plt.close(d.fig)


@pytest.mark.parametrize("name", diagrams.DIAGRAMS)
def test_every_diagram_draws_at_the_column_width(name):
    """The list comes from the family modules' ``__all__``: a new diagram is tested
    here as soon as it is exported (CONTRIBUTING §2, "a new component")."""
    d = getattr(diagrams, name)()
    assert isinstance(d, diagrams.Diagram)
    _layout_ok(d)


def test_every_family_module_is_exported_and_imports_no_private_names():
    import ast
    import inspect

    families = (
        diagrams.cnn,
        diagrams.deeplab,
        diagrams.transformers,
        diagrams.segformer,
    )
    for module in families:
        for name in module.__all__:
            assert getattr(diagrams, name) is getattr(module, name)
            assert name in diagrams.__all__
        tree = ast.parse(inspect.getsource(module))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{module.__name__} imports {private}"
    assert sorted(diagrams.DIAGRAMS) == sorted(
        n for m in families for n in m.__all__
    )
