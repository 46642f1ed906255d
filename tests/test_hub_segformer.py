"""SegFormer checkpoint conversion: Hugging Face Hub layout and official NVlabs layout -> ours, and
ours -> the Hugging Face layout (export).

The Hugging Face side is a randomly initialised ``SegformerForSemanticSegmentation`` written with
``save_pretrained`` (the Hub layout a Colab user downloads), never the in-memory module names alone;
exports are loaded back with ``from_pretrained``, which must report no missing or unexpected keys.
"""
from __future__ import annotations

import json
import re

import pytest
import torch

transformers = pytest.importorskip("transformers")
from transformers import SegformerConfig, SegformerForSemanticSegmentation  # noqa: E402

from tutorial_lib.hub import (download_cached, load_state_dict, save_hf_pretrained, save_state_dict,  # noqa: E402
                              segformer_from_hf_state_dict, segformer_from_nvlabs_state_dict, segformer_hf_config,
                              segformer_to_hf_state_dict)
from tutorial_lib.models import segformer_b0, tiny_fcn  # noqa: E402
from tutorial_lib.models.segformer import SegFormer, SegFormerConfig, segformer_config  # noqa: E402

B2_LIKE = dict(hidden_sizes=[64, 128, 320, 512], depths=[1, 2, 2, 1], decoder_hidden_size=768, num_labels=19)


def hf_model(**kw) -> SegformerForSemanticSegmentation:
    torch.manual_seed(0)
    model = SegformerForSemanticSegmentation(SegformerConfig(**{"num_labels": 150, **kw})).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, as in a trained checkpoint
        bn = model.decode_head.batch_norm
        bn.running_mean.normal_(0, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.normal_(1, 0.2)
        bn.bias.normal_(0, 0.2)
    return model


@pytest.fixture(scope="module")
def saved_b0(tmp_path_factory):
    model = hf_model()
    folder = tmp_path_factory.mktemp("hf_b0")
    model.save_pretrained(folder)
    return model, load_state_dict(folder / "model.safetensors")


def hf_logits(model, x):
    with torch.no_grad():
        return model(pixel_values=x).logits


def test_saved_file_uses_hub_layout(saved_b0):
    _, state = saved_b0
    assert "segformer.encoder.block.0.0.attention.self.query.weight" in state
    assert "decode_head.linear_c.0.proj.weight" in state
    assert not any(k.startswith("segformer.stages.") for k in state)


@pytest.mark.parametrize("size", [(512, 512), (173, 251)])
def test_hf_b0_same_logits(saved_b0, size):
    model, state = saved_b0
    ours = segformer_from_hf_state_dict(state, "b0")
    x = torch.randn(1, 3, *size)
    want = hf_logits(model, x)
    with torch.no_grad():
        got, got_folded = ours(x), ours.fold_decoder()(x)
    assert got.shape == want.shape == (1, 150, (size[0] + 3) // 4, (size[1] + 3) // 4)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)
    torch.testing.assert_close(got_folded, want, atol=1e-4, rtol=0)


@pytest.mark.parametrize("size", [(512, 512), (200, 328)])
def test_hf_b2_like_same_logits(tmp_path, size):
    model = hf_model(**B2_LIKE)
    model.save_pretrained(tmp_path)
    config = segformer_config("b2", depths=(1, 2, 2, 1))
    ours = segformer_from_hf_state_dict(load_state_dict(tmp_path / "model.safetensors"), config)
    assert ours.config.num_classes == 19 and ours.config.decoder_dim == 768
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        got = ours(x)
    torch.testing.assert_close(got, hf_logits(model, x), atol=1e-4, rtol=0)


def test_hf_in_memory_names_also_convert(saved_b0):
    model, _ = saved_b0
    state = model.state_dict()
    assert any(k.startswith("segformer.stages.") for k in state)  # transformers 5.x naming
    ours = segformer_from_hf_state_dict(state, "b0")
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), hf_logits(model, x), atol=1e-4, rtol=0)


def test_layer_norm_eps_choice(saved_b0):
    _, state = saved_b0
    assert segformer_from_hf_state_dict(state, "b0").config.layer_norm_eps == 1e-5  # what HF computes with
    official = segformer_from_hf_state_dict(state, "b0", layer_norm_eps=1e-6)
    assert official.encoder.stages[0].blocks[0].norm1.eps == 1e-6


def to_nvlabs_layout(hf_state: dict) -> dict:
    """The official NVlabs key layout, written out from mix_transformer.py / segformer_head.py."""
    out = {}
    for key, value in hf_state.items():
        m = re.match(r"segformer\.encoder\.patch_embeddings\.(\d)\.(proj|layer_norm)\.(\w+)$", key)
        if m:
            out[f"backbone.patch_embed{int(m[1]) + 1}.{'proj' if m[2] == 'proj' else 'norm'}.{m[3]}"] = value
            continue
        m = re.match(r"segformer\.encoder\.block\.(\d)\.(\d+)\.(.+)\.(weight|bias)$", key)
        if m:
            names = {"layer_norm_1": "norm1", "layer_norm_2": "norm2", "attention.self.query": "attn.q",
                     "attention.self.sr": "attn.sr", "attention.self.layer_norm": "attn.norm",
                     "attention.output.dense": "attn.proj", "mlp.dense1": "mlp.fc1",
                     "mlp.dwconv.dwconv": "mlp.dwconv.dwconv", "mlp.dense2": "mlp.fc2"}
            prefix = f"backbone.block{int(m[1]) + 1}.{m[2]}."
            if m[3] == "attention.self.key":
                value_key = key.replace("attention.self.key", "attention.self.value")
                out[prefix + f"attn.kv.{m[4]}"] = torch.cat([value, hf_state[value_key]])
            elif m[3] != "attention.self.value":
                out[prefix + f"{names[m[3]]}.{m[4]}"] = value
            continue
        m = re.match(r"segformer\.encoder\.layer_norm\.(\d)\.(\w+)$", key)
        if m:
            out[f"backbone.norm{int(m[1]) + 1}.{m[2]}"] = value
            continue
        m = re.match(r"decode_head\.linear_c\.(\d)\.proj\.(\w+)$", key)
        if m:
            out[f"decode_head.linear_c{int(m[1]) + 1}.proj.{m[2]}"] = value
            continue
        simple = {"decode_head.linear_fuse.weight": "decode_head.linear_fuse.conv.weight",
                  "decode_head.classifier.weight": "decode_head.linear_pred.weight",
                  "decode_head.classifier.bias": "decode_head.linear_pred.bias"}
        if key in simple:
            out[simple[key]] = value
        elif key.startswith("decode_head.batch_norm."):
            out[key.replace("batch_norm", "linear_fuse.bn")] = value
        else:
            raise AssertionError(f"unmapped key {key}")
    n_cls = hf_state["decode_head.classifier.weight"].shape[0]
    out["decode_head.conv_seg.weight"] = torch.randn(n_cls, 128, 1, 1)  # the unused head mmseg builds
    out["decode_head.conv_seg.bias"] = torch.zeros(n_cls)
    return out


def test_nvlabs_layout_same_logits(saved_b0):
    model, state = saved_b0
    nv = to_nvlabs_layout(state)
    assert "backbone.block1.0.attn.kv.weight" in nv and "decode_head.linear_c4.proj.weight" in nv
    ours = segformer_from_nvlabs_state_dict(nv, "b0", layer_norm_eps=1e-5)  # HF computed with 1e-5
    assert segformer_from_nvlabs_state_dict(nv, "b0").config.layer_norm_eps == 1e-6
    x = torch.randn(1, 3, 173, 251)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), hf_logits(model, x), atol=1e-4, rtol=0)


def test_missing_and_extra_keys_are_listed(saved_b0):
    _, state = saved_b0
    broken = dict(state)
    del broken["segformer.encoder.block.1.0.mlp.dense2.bias"]
    broken["decode_head.unknown.weight"] = torch.zeros(1)
    with pytest.raises(ValueError) as err:
        segformer_from_hf_state_dict(broken, "b0")
    message = str(err.value)
    assert "encoder.stages.1.blocks.0.mlp.fc2.bias" in message and "missing" in message
    assert "decode_head.unknown.weight" in message and "unexpected" in message
    nv = to_nvlabs_layout(state)
    nv["backbone.block1.2.norm1.weight"] = torch.ones(32)  # a third block that B0 does not have
    with pytest.raises(ValueError, match=r"unexpected key\(s\) \['encoder.stages.0.blocks.2.norm1.weight'\]"):
        segformer_from_nvlabs_state_dict(nv, "b0")


def test_wrong_variant_and_half_kv_fail(saved_b0):
    _, state = saved_b0
    with pytest.raises(ValueError, match="wrong shape"):
        segformer_from_hf_state_dict(state, segformer_config("b1", depths=(2, 2, 2, 2)))
    broken = {k: v for k, v in state.items() if k != "segformer.encoder.block.0.0.attention.self.value.weight"}
    with pytest.raises(ValueError, match="only the key half"):
        segformer_from_hf_state_dict(broken, "b0")
    with pytest.raises(ValueError, match="expected a dict of tensors"):
        segformer_from_hf_state_dict([1, 2], "b0")
    with pytest.raises(ValueError, match="expected variant"):
        segformer_from_hf_state_dict(state, 3)


def test_download_cached_converted_checkpoint(saved_b0, tmp_path):
    """The Colab path: download (here a file:// URL) -> safe load -> convert -> same logits."""
    model, state = saved_b0
    source = tmp_path / "segformer-b0-random.safetensors"
    save_state_dict(state, source)
    path = download_cached(source.as_uri(), cache_dir=tmp_path / "cache")
    assert path.parent == tmp_path / "cache" and path.exists()
    ours = segformer_from_hf_state_dict(load_state_dict(path), "b0")
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), hf_logits(model, x), atol=1e-4, rtol=0)


# --------------------------------------------------------------------------------------------
# Export: ours -> the Hugging Face layout
# --------------------------------------------------------------------------------------------

EXPORT_CONFIGS = {
    "b0": segformer_config("b0", layer_norm_eps=1e-5),
    # three stages, odd widths and ratios, 4 input channels, patch 5: everything HF's config can say
    "custom": SegFormerConfig(embed_dims=(16, 24, 40), depths=(1, 2, 1), num_heads=(1, 2, 4), sr_ratios=(4, 2, 1),
                              mlp_ratios=(2, 4, 3), patch_sizes=(5, 3, 3), strides=(4, 2, 2), decoder_dim=32,
                              num_classes=7, in_chans=4, layer_norm_eps=1e-5),
}


def ours_model(config: SegFormerConfig) -> SegFormer:
    model = SegFormer(config).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics and norms, as in a trained model
        bn = model.decode_head.norm
        bn.running_mean.normal_(0, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.num_batches_tracked.fill_(1234)
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def assert_same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_export_writes_exactly_what_save_pretrained_writes(tmp_path):
    model = ours_model(EXPORT_CONFIGS["b0"])
    ours = segformer_to_hf_state_dict(model)
    SegformerForSemanticSegmentation(SegformerConfig(**segformer_hf_config(model))).save_pretrained(tmp_path)
    theirs = load_state_dict(tmp_path / "model.safetensors")
    assert ours.keys() == theirs.keys()
    assert all(ours[k].shape == theirs[k].shape for k in ours)
    kv = model.encoder.stages[0].blocks[1].attn.kv.weight
    assert torch.equal(ours["segformer.encoder.block.0.1.attention.self.key.weight"], kv[:32])
    assert torch.equal(ours["segformer.encoder.block.0.1.attention.self.value.weight"], kv[32:])
    assert "decode_head.linear_c.3.proj.weight" in ours


def test_hub_checkpoint_survives_import_and_export_unchanged(saved_b0):
    _, state = saved_b0
    again = segformer_to_hf_state_dict(segformer_from_hf_state_dict(state, "b0"))
    assert again.keys() == state.keys()
    assert all(torch.equal(again[k], state[k]) for k in state)


@pytest.mark.parametrize("name", list(EXPORT_CONFIGS))
def test_export_roundtrip_ours_hf_ours(name):
    model = ours_model(EXPORT_CONFIGS[name])
    back = segformer_from_hf_state_dict(segformer_to_hf_state_dict(model), model.config)
    assert_same_state(back, model)  # BatchNorm running statistics and num_batches_tracked included
    x = torch.randn(1, model.config.in_chans, 45, 61)
    with torch.no_grad():
        assert torch.equal(back(x), model(x))


@pytest.mark.parametrize("name", list(EXPORT_CONFIGS))
def test_save_hf_pretrained_loads_in_transformers(tmp_path, name):
    model = ours_model(EXPORT_CONFIGS[name])
    save_hf_pretrained(model, tmp_path)
    hf, info = SegformerForSemanticSegmentation.from_pretrained(tmp_path, output_loading_info=True)
    assert (info["missing_keys"], info["unexpected_keys"], info["mismatched_keys"]) == (set(), set(), set())
    assert hf.config.model_type == "segformer" and hf.config.architectures == ["SegformerForSemanticSegmentation"]
    assert hf.config.num_labels == model.config.num_classes
    for key, value in segformer_hf_config(model).items():
        stored = getattr(hf.config, key)
        assert (list(stored) if isinstance(value, list) else stored) == value, key
    bn = hf.decode_head.batch_norm
    assert torch.equal(bn.running_mean, model.decode_head.norm.running_mean)
    assert torch.equal(bn.running_var, model.decode_head.norm.running_var)
    for size in [(64, 64), (45, 61)]:
        x = torch.randn(2, model.config.in_chans, *size)
        with torch.no_grad():
            torch.testing.assert_close(hf_logits(hf.eval(), x), model(x), atol=1e-4, rtol=0)
    back = segformer_from_hf_state_dict(hf.state_dict(), model.config)  # transformers 5.x in-memory names
    assert_same_state(back, model)


def test_export_refuses_what_hf_cannot_express(tmp_path):
    with pytest.raises(ValueError, match="expected a tutorial_lib SegFormer.*got TinyFCN"):
        segformer_to_hf_state_dict(tiny_fcn())
    folded = ours_model(EXPORT_CONFIGS["b0"]).fold_decoder()
    with pytest.raises(ValueError, match="unfolded AllMLPDecoder.*got FoldedAllMLPDecoder"):
        save_hf_pretrained(folded, tmp_path)
    official = segformer_b0()  # eps 1e-6, as the official code; HF would compute with 1e-5
    for export in (segformer_to_hf_state_dict, segformer_hf_config):
        with pytest.raises(ValueError, match=r"eps 1e-05.*got 20 other\(s\).*allow_eps_change"):
            export(official)
    assert not any(tmp_path.iterdir())  # nothing written by a refused export
    save_hf_pretrained(official, tmp_path, allow_eps_change=True)
    hf = SegformerForSemanticSegmentation.from_pretrained(tmp_path).eval()
    assert hf.config.layer_norm_eps == 1e-6  # recorded, though HF computes with 1e-5
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(hf_logits(hf, x), official.eval()(x), atol=1e-2, rtol=0)


def test_save_hf_pretrained_class_names(tmp_path):
    model = ours_model(EXPORT_CONFIGS["custom"])
    names = {i: f"class {i}" for i in range(7)}
    save_hf_pretrained(model, tmp_path, id2label=names)
    config = SegformerForSemanticSegmentation.from_pretrained(tmp_path).config
    assert config.id2label == names and config.label2id["class 6"] == 6
    save_hf_pretrained(model, tmp_path / "again", id2label={str(k): v for k, v in names.items()})  # config.json's keys
    assert json.loads((tmp_path / "again" / "config.json").read_text())["id2label"]["6"] == "class 6"
    with pytest.raises(ValueError, match=r"expected names for classes 0…6, got keys \['0', '1'\]"):
        save_hf_pretrained(model, tmp_path / "bad", id2label={0: "a", 1: "b"})
