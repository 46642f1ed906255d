"""load_pretrained_segformer: the pinned Hub download of chapter 11's pretrained SegFormer, tested offline.

No network: a randomly initialised B0 ``SegformerForSemanticSegmentation`` written with
``save_pretrained`` stands in for ``nvidia/segformer-b0-finetuned-ade-512-512``; a test-only registry
entry pins the SHA-256 of those local files and ``base_url`` points at their ``file://`` folder, so
the real code path (download, verify, cache, safe load, conversion, labels) runs end to end.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re

import pytest
import torch

transformers = pytest.importorskip("transformers")
from transformers import SegformerConfig, SegformerForSemanticSegmentation  # noqa: E402

from tutorial_lib import hub_pretrained  # noqa: E402
from tutorial_lib.hub import PRETRAINED_SEGFORMER, PinnedCheckpoint, load_pretrained_segformer  # noqa: E402
from tutorial_lib.models.segformer import SegFormer  # noqa: E402

FILES = ("model.safetensors", "config.json")
FAKE_REVISION = "0123456789abcdef0123456789abcdef01234567"
LABELS = {i: f"class_{i}" for i in range(150)} | {0: "wall", 1: "building"}


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def fake_hub(tmp_path_factory):
    """A B0 checkpoint with 150 named classes in the Hub layout, and the pin of its files."""
    torch.manual_seed(0)
    model = SegformerForSemanticSegmentation(SegformerConfig(num_labels=150, id2label=LABELS,
                                                             label2id={v: k for k, v in LABELS.items()})).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, as in a trained checkpoint
        model.decode_head.batch_norm.running_mean.normal_(0, 0.5)
        model.decode_head.batch_norm.running_var.uniform_(0.5, 2.0)
    folder = tmp_path_factory.mktemp("fake_hub")
    model.save_pretrained(folder)
    pin = PinnedCheckpoint(repo="test/segformer-b0-fake", revision=FAKE_REVISION, variant="b0",
                           files={f: sha256(folder / f) for f in FILES})
    return model, folder, pin


@pytest.fixture
def registered(fake_hub, monkeypatch):
    model, folder, pin = fake_hub
    monkeypatch.setitem(PRETRAINED_SEGFORMER, "test-b0", pin)
    return model, folder, pin


def test_real_entry_is_pinned_to_a_commit_and_hashes():
    pin = PRETRAINED_SEGFORMER["b0-ade"]
    assert pin.repo == "nvidia/segformer-b0-finetuned-ade-512-512" and pin.variant == "b0"
    assert re.fullmatch(r"[0-9a-f]{40}", pin.revision)
    assert set(pin.files) == set(FILES)
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in pin.files.values())
    for f in FILES:
        assert pin.url(f) == f"https://huggingface.co/{pin.repo}/resolve/{pin.revision}/{f}"
        assert pin.revision in pin.cache_name(f) and pin.cache_name(f).endswith(f)
    other = dataclasses.replace(pin, revision="f" * 40)
    assert other.cache_name("model.safetensors") != pin.cache_name("model.safetensors")
    with pytest.raises(TypeError):
        pin.files["config.json"] = "0" * 64  # the pins are read-only


@pytest.mark.parametrize("kw, match", [
    (dict(revision="main"), "40 lowercase hex"),
    (dict(revision="A" * 40), "40 lowercase hex"),
    (dict(repo="no-owner"), "owner/name"),
    (dict(files={"model.safetensors": "abc"}), "64 lowercase hex"),
    (dict(files={"../model.safetensors": "0" * 64}), "plain file names"),
    (dict(files={}), "no files"),
])
def test_pinned_checkpoint_refuses_loose_pins(kw, match):
    args = dict(repo="a/b", revision="0" * 40, variant="b0", files={"config.json": "0" * 64}) | kw
    with pytest.raises(ValueError, match=match):
        PinnedCheckpoint(**args)


def test_url_of_an_unpinned_file_errors():
    with pytest.raises(ValueError, match="pytorch_model.bin"):
        PRETRAINED_SEGFORMER["b0-ade"].url("pytorch_model.bin")


def test_unknown_name_lists_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match=r"expected one of \['b0-ade'\].*'b9-nope'"):
        load_pretrained_segformer("b9-nope", cache_dir=tmp_path)
    assert not any(tmp_path.iterdir())


def test_loads_from_a_file_url_and_matches_transformers(registered, tmp_path):
    hf, folder, pin = registered
    cache = tmp_path / "cache"
    model, id2label = load_pretrained_segformer("test-b0", cache_dir=cache, base_url=folder.as_uri() + "/")
    assert isinstance(model, SegFormer) and not model.training
    assert id2label == LABELS and all(isinstance(k, int) for k in id2label)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(model(x), hf(pixel_values=x).logits, atol=1e-4, rtol=0)
    assert sorted(p.name for p in cache.iterdir()) == sorted(pin.cache_name(f) for f in FILES)
    # Second call: served from the (re-verified) cache, the source is not read again.
    again, _ = load_pretrained_segformer("test-b0", cache_dir=cache, base_url=(tmp_path / "gone").as_uri())
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


def test_base_url_without_trailing_slash(registered, tmp_path):
    _, folder, _ = registered
    model, id2label = load_pretrained_segformer("test-b0", cache_dir=tmp_path, base_url=folder.as_uri())
    assert model.config.num_classes == 150 and id2label[1] == "building"


@pytest.mark.parametrize("wrong", FILES)
def test_wrong_hash_errors_and_caches_nothing_of_that_file(fake_hub, monkeypatch, tmp_path, wrong):
    _, folder, pin = fake_hub
    bad = dataclasses.replace(pin, files={**pin.files, wrong: "0" * 64})
    monkeypatch.setitem(PRETRAINED_SEGFORMER, "test-b0", bad)
    with pytest.raises(ValueError, match=f"{wrong}.*expected sha256 {'0' * 64}, got {pin.files[wrong]}"):
        load_pretrained_segformer("test-b0", cache_dir=tmp_path, base_url=folder.as_uri() + "/")
    cached = {p.name for p in tmp_path.iterdir()}
    assert pin.cache_name(wrong) not in cached
    assert not any(name.endswith(".part") for name in cached)  # no partial download left behind


def test_a_damaged_cached_file_is_refused(registered, tmp_path):
    _, folder, pin = registered
    load_pretrained_segformer("test-b0", cache_dir=tmp_path, base_url=folder.as_uri())
    (tmp_path / pin.cache_name("config.json")).write_text("{}", encoding="utf-8")
    with pytest.raises(ValueError, match="Delete it"):
        load_pretrained_segformer("test-b0", cache_dir=tmp_path, base_url=folder.as_uri())


def test_labels_must_name_every_class(fake_hub, monkeypatch, tmp_path):
    _, folder, pin = fake_hub
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    (tmp_path / "src" / "config.json").write_text('{"id2label": {"0": "wall"}}', encoding="utf-8")
    bad = dataclasses.replace(pin, files={f: sha256(tmp_path / "src" / f) for f in FILES})
    monkeypatch.setitem(PRETRAINED_SEGFORMER, "test-b0", bad)
    with pytest.raises(ValueError, match="id2label"):
        load_pretrained_segformer("test-b0", cache_dir=tmp_path / "cache", base_url=(tmp_path / "src").as_uri())


def test_module_registry_is_the_reexported_one():
    assert hub_pretrained.PRETRAINED_SEGFORMER is PRETRAINED_SEGFORMER
    assert hub_pretrained.load_pretrained_segformer is load_pretrained_segformer
    assert hub_pretrained.PinnedCheckpoint is PinnedCheckpoint
