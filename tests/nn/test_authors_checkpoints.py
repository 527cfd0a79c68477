"""The authors' checkpoints: Uformer (ZhendongWang6/Uformer) and SkipAt (skip-attention) load and reproduce.

Golden outputs: ``tests/nn/data/authors_golden.pt``, made once by ``tests/nn/authors_reference.py`` (the authors'
architectures rebuilt from their published code outside the package, run in float64 on seeded weights drawn per key
name, see its docstring). Here the same weights are regenerated in the authors' layout, written to a file as their
training scripts do, loaded through the converters and run by our models (float32). To remake the golden file:

    OMP_NUM_THREADS=1 python tests/nn/authors_reference.py tests/nn/data/authors_golden.pt

(about a minute on one core; rerunning it gives the same tensors bit for bit, CPU float64).
"""
import argparse
import importlib.util
import os.path as osp

import pytest
import torch

from dense_adapters.errors import CheckpointMismatch, UserError
from dense_adapters.nn import RegViT, Uformer, create_regvit, create_uformer
from dense_adapters.nn.convert import (build_uformer_from_checkpoint, load_file, load_pretrained, regvit_to_skipat,
                                       uformer_to_authors)

HERE = osp.dirname(__file__)
_spec = importlib.util.spec_from_file_location("authors_reference", osp.join(HERE, "authors_reference.py"))
REF = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(REF)
GOLDEN = torch.load(osp.join(HERE, "data", "authors_golden.pt"), weights_only=True)


def close(ours: torch.Tensor, golden: torch.Tensor, rtol: float = 2e-4) -> bool:
    return bool(((ours.float() - golden).abs() <= rtol * (1 + golden.abs().max())).all())


def authors_uformer_state_dict(kw: dict, seed: int) -> dict:
    """The authors' Uformer state dict of a golden case: their module names and shapes (built on the meta device),
    the recorded seed's weights, their relative position index buffers."""
    with torch.device("meta"):
        ref = REF.UformerRef(**kw)
    keys = REF.key_list(ref)
    buffers = {k: REF.swin_index(REF.math.isqrt(s[0])) for k, s in keys if k.endswith("relative_position_index")}
    return keys, REF.fill_state_dict(keys, seed=seed, dtype=torch.float32, buffers=buffers)


def authors_skipat_state_dict(kw: dict, seed: int) -> tuple:
    with torch.device("meta"):
        ref = REF.SkipAtViTRef(**kw)
    keys = REF.key_list(ref)
    return keys, REF.fill_state_dict(keys, seed=seed, dtype=torch.float32)


def ours_uformer_kwargs(kw: dict) -> dict:
    return dict(embed_dim=kw["embed_dim"], depths=kw["depths"], win_size=kw.get("win_size", 8))


# --------------------------------------------------------------------------------------------------- Uformer
@pytest.mark.parametrize("name", list(GOLDEN["uformer"]))
def test_uformer_matches_the_authors_model(name, tmp_path):
    case = GOLDEN["uformer"][name]
    keys, sd = authors_uformer_state_dict(case["kwargs"], case["seed"])
    assert REF.key_digest(keys) == case["digest"], "the reference architecture changed since the golden was recorded"
    path = tmp_path / "model_best.pth"
    torch.save({"epoch": 250, "state_dict": {f"module.{k}": v for k, v in sd.items()}}, path)  # DataParallel-saved
    model = Uformer(**ours_uformer_kwargs(case["kwargs"]), shift_from_size=case["kwargs"]["img_size"]).eval()
    report = load_pretrained(model, str(path))
    assert report.source == "uformer" and report.complete and not report.new
    n_index = sum(k.endswith("relative_position_index") for k, _ in keys)
    assert len(next(v for r, v in report.dropped.items() if "relative position index" in r)) == n_index
    x = REF.image_input(case["input_seed"], (1, 3, case["size"], case["size"])).float()
    with torch.no_grad():
        out = REF.reduce_image(model(x))
        assert close(out["pool"], case["pool"]) and close(out["crop"], case["crop"])
        if case["size"] > case["kwargs"]["img_size"]:
            # today's rule (shift wherever the grid is larger than a window) shifts their non-shifting bottleneck
            model_default = Uformer(**ours_uformer_kwargs(case["kwargs"])).eval()
            model_default.load_state_dict(model.state_dict())
            other = REF.reduce_image(model_default(x))
            assert (other["pool"] - case["pool"]).abs().max() > 1e-3


def test_uformer_architecture_read_from_the_authors_file(tmp_path):
    case = GOLDEN["uformer"]["uformer_narrow_256_from_128"]
    _, sd = authors_uformer_state_dict(case["kwargs"], case["seed"])
    torch.save({"state_dict": sd}, tmp_path / "n.pth")
    model, report = build_uformer_from_checkpoint(str(tmp_path / "n.pth"), shift_from_size=128)
    assert model.depths == (1, 1, 1, 1, 2, 1, 1, 1, 1) and model.embed_dim == 8 and model.skip_mode is None
    assert model.num_levels == 4 and [s.blocks[0].attn.num_heads for s in model.encoders] == [1, 2, 4, 8]
    assert report.complete and model.shift_from_size == 128


@pytest.mark.parametrize("preset", ["T", "S", "B"])
def test_uformer_presets_have_the_authors_tensors(preset):
    """Every preset, mapped to the authors' names, has exactly their keys and shapes and parameter count."""
    arch = GOLDEN["archs"][preset]
    with torch.device("meta"):
        ref = REF.UformerRef(img_size=128, **arch["kwargs"])
        ours = create_uformer(preset)
    theirs = REF.key_list(ref)
    assert REF.key_digest(theirs) == arch["digest"] and len(theirs) == arch["n_keys"]
    mapped = uformer_to_authors(ours.state_dict())
    assert sorted((k, tuple(v.shape)) for k, v in mapped.items()) == sorted(theirs)
    assert sum(p.numel() for p in ours.parameters()) == arch["n_params"]  # T 5,291,853 / S 20,751,197 / B 50,880,946


@pytest.mark.parametrize("preset", ["T"])  # S and B: same mapping (their keys/shapes above; B's depths in a golden)
def test_uformer_presets_roundtrip_the_authors_layout(preset, tmp_path):
    """Our seeded model, written in the authors' layout by the inverse mapping, loads strictly: the same outputs."""
    torch.manual_seed(1)
    ours = create_uformer(preset).eval()
    torch.save({"state_dict": uformer_to_authors(ours.state_dict())}, tmp_path / "w.pth")
    fresh = create_uformer(preset).eval()
    report = load_pretrained(fresh, str(tmp_path / "w.pth"), strict=True)
    assert report.complete
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        assert torch.equal(fresh(x), ours(x))


def small_uformer() -> Uformer:
    torch.manual_seed(0)
    return Uformer(embed_dim=8, depths=(1, 1, 2, 1, 1), win_size=4).eval()


def test_uformer_refusals(tmp_path):
    sd = uformer_to_authors(small_uformer().state_dict())
    bad = dict(sd)
    k = next(k for k in bad if k.endswith("relative_position_index"))
    bad[k] = bad[k].flip(0)
    torch.save({"state_dict": bad}, tmp_path / "bad_index.pth")
    with pytest.raises(CheckpointMismatch, match="relative position index"):
        load_pretrained(small_uformer(), str(tmp_path / "bad_index.pth"))
    extra = {**sd, "decoderlayer_0.blocks.0.cross_modulator.weight": torch.zeros(16, 16)}
    torch.save({"state_dict": extra}, tmp_path / "extra.pth")
    with pytest.raises(CheckpointMismatch, match="1 checkpoint tensors would go unused.*cross_modulator"):
        load_pretrained(small_uformer(), str(tmp_path / "extra.pth"))
    report = load_pretrained(small_uformer(), str(tmp_path / "extra.pth"), partial=True)
    assert report.partial and report.unexpected == ["decoders.0.blocks.0.cross_modulator.weight"]
    lacking = {k: v for k, v in sd.items() if "to_kv" not in k or "encoderlayer_1" not in k}
    torch.save({"state_dict": lacking}, tmp_path / "lacking.pth")
    with pytest.raises(CheckpointMismatch, match="would stay uninitialised"):
        load_pretrained(small_uformer(), str(tmp_path / "lacking.pth"))
    with pytest.raises(CheckpointMismatch, match="holds a Uformer, but the model is a RegViT"):
        load_pretrained(create_regvit("vit_tiny_patch16_224", depth=2), str(tmp_path / "extra.pth"))
    torch.save({"state_dict": small_uformer().state_dict()}, tmp_path / "ours.pth")  # our own layout: detected too
    assert load_pretrained(small_uformer(), str(tmp_path / "ours.pth")).source == "uformer-native"
    with pytest.raises(CheckpointMismatch, match="'uformer-native' format"):
        load_pretrained(small_uformer(), str(tmp_path / "ours.pth"), source="uformer")


# ------------------------------------------------------------------------------------------------------ SkipAt
def ours_skipat(kw: dict, **over) -> RegViT:
    arch = {192: "tiny", 384: "small"}[kw["dim"]]
    return create_regvit(f"skipat_{arch}_patch16_224", img_size=kw["img_size"],
                         skip_layers=kw.get("skip_indices", (3, 4, 5, 6, 7, 8)), **over).eval()


@pytest.mark.parametrize("name", list(GOLDEN["skipat"]))
def test_skipat_matches_the_authors_model(name, tmp_path):
    case, kw = GOLDEN["skipat"][name], GOLDEN["skipat"][name]["kwargs"]
    keys, sd = authors_skipat_state_dict(kw, case["seed"])
    assert REF.key_digest(keys) == case["digest"]
    path = tmp_path / "skipat.t7"
    torch.save({"model": {f"module.{k}": v for k, v in sd.items()}, "epoch": 299,
                "args": argparse.Namespace(model="skipat_tiny_patch16_224", lr=5e-4)}, path)
    gaps = "skip_indices" in kw
    model = ours_skipat(kw, skip_chain="phi" if gaps else "previous")
    report = load_pretrained(model, str(path), partial=gaps)  # their code builds six Phi: two unused with 4 skips
    assert report.source == "skipat"
    assert report.unexpected == ([f"param_{j}.{n}" for j in (5, 6) for n in
                                  ("linear1.0.weight", "linear1.0.bias", "dwconv.0.weight", "dwconv.0.bias",
                                   "linear2.0.weight", "linear2.0.bias", "eca.conv.weight")] if gaps else [])
    assert not report.missing and not report.new
    assert len(report.skipped_attention) == 6 * len(model.skip_layers)  # norm1 + qkv + proj of skipped blocks
    assert report.dropped["classifier head"] == ["head.weight", "head.bias"]
    x = REF.vit_input(case["input_seed"], (case["batch"], 3, kw["img_size"], kw["img_size"])).float()
    with torch.no_grad():
        out = REF.reduce_tokens(model(x), sd["head.weight"], sd["head.bias"])
        for k in ("cls", "patch_mean", "patches", "logits"):
            assert close(out[k], case[k]), k
        if gaps:  # the paper's chaining (the default) reads block 6's attention at block 7: another function
            model.skip_chain = "previous"
            assert (REF.reduce_tokens(model(x), sd["head.weight"], sd["head.bias"])["cls"] - case["cls"]).abs().max() > 1e-3


def test_skipat_gaps_need_the_authors_chaining(tmp_path):
    kw = GOLDEN["skipat"]["skipat_tiny_gaps"]["kwargs"]
    _, sd = authors_skipat_state_dict(kw, 0)
    torch.save({"model": sd}, tmp_path / "g.t7")
    with pytest.raises(CheckpointMismatch, match="skip_chain='phi'"):
        load_pretrained(ours_skipat(kw), str(tmp_path / "g.t7"), partial=True)


def skipat_file(tmp_path, **containers) -> str:
    torch.manual_seed(0)
    vit = create_regvit("skipat_tiny_patch16_224", img_size=32, depth=12, embed_dim=24, num_heads=2)
    sd = regvit_to_skipat(vit.state_dict(), vit.skip_layers)
    for i in vit.skip_layers:  # the authors' skipped blocks keep their (unused) attention weights
        sd.update({f"blocks.{i}.{k}": v for k, v in vit.blocks[0].state_dict().items() if k.startswith(("attn.", "norm1."))})
    path = str(tmp_path / "skipat.t7")
    torch.save({name: (sd if make is None else make(sd)) for name, make in containers.items()} or {"model": sd}, path)
    return path


def small_skipat(**over) -> RegViT:
    return create_regvit("skipat_tiny_patch16_224", img_size=32, embed_dim=24, num_heads=2, **over)


@pytest.mark.parametrize("arch", ["tiny", "small"])
def test_skipat_roundtrip_the_authors_layout(arch, tmp_path):
    """A seeded SkipAt ViT-T/S (narrow: depth and heads as released, width / 8), written in the authors' layout
    (Phi as param_1..6, skipped blocks' unused attention kept, the cls position entry in pos_embed) loads strictly
    and gives the same outputs."""
    dim, heads = {"tiny": (24, 3), "small": (48, 6)}[arch]
    torch.manual_seed(2)
    vit = create_regvit(f"skipat_{arch}_patch16_224", img_size=32, embed_dim=dim, num_heads=heads).eval()
    sd = regvit_to_skipat(vit.state_dict(), vit.skip_layers)
    for i in vit.skip_layers:
        sd.update({f"blocks.{i}.{k}": v for k, v in vit.blocks[0].state_dict().items() if k.startswith(("attn.", "norm1."))})
    sd.update({"head.weight": torch.zeros(10, dim), "head.bias": torch.zeros(10)})
    torch.save({"model": sd}, tmp_path / "w.t7")
    fresh = create_regvit(f"skipat_{arch}_patch16_224", img_size=32, embed_dim=dim, num_heads=heads).eval()
    report = load_pretrained(fresh, str(tmp_path / "w.t7"), strict=True)
    assert report.source == "skipat" and report.complete and len(report.loaded) == len(vit.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(fresh(x), vit(x))


def test_skipat_file_without_the_converter_is_refused(tmp_path):
    """The authors' file forced through the timm converter, or with renamed Phi keys that no signature knows, is
    refused (it used to load with Phi at random init); a partial load says so."""
    path = skipat_file(tmp_path)
    with pytest.raises(CheckpointMismatch, match="'skipat' format"):
        load_pretrained(small_skipat(), path, source="timm")
    sd = load_file(path)["model"]
    renamed = {k.replace("param_", "phi_"): v for k, v in sd.items()}
    torch.save({"model": renamed}, tmp_path / "renamed.t7")
    with pytest.raises(CheckpointMismatch, match=r"read as a 'timm' checkpoint.*42 checkpoint tensors would go unused"):
        load_pretrained(small_skipat(), str(tmp_path / "renamed.t7"))
    report = load_pretrained(small_skipat(), str(tmp_path / "renamed.t7"), partial=True)
    assert report.partial and len(report.unexpected) == 42 and len(report.new) == 42  # Phi stays random: said so
    with pytest.raises(CheckpointMismatch, match="skip_layers=\\(3, 4, 5, 6, 7, 8\\)"):  # a plain ViT: the hint
        load_pretrained(create_regvit("vit_tiny_patch16_224", img_size=32, embed_dim=24, num_heads=2), path)


def test_skipat_containers_in_the_authors_order(tmp_path):
    zero = lambda sd: {k: torch.zeros_like(v) for k, v in sd.items()}  # noqa: E731
    path = skipat_file(tmp_path, state_dict=zero, state_dict_ema=None)  # their loader takes the EMA weights here
    model = small_skipat()
    report = load_pretrained(model, path)
    assert any("'state_dict_ema'" in n for n in report.notes)
    assert model.blocks[3].skip_fn.fc1.weight.abs().sum() > 0
    model_from_model = small_skipat()
    load_pretrained(model_from_model, skipat_file(tmp_path, model=None, state_dict_ema=zero))
    assert model_from_model.blocks[3].skip_fn.fc1.weight.abs().sum() > 0


def test_skip_chain_option():
    with pytest.raises(UserError, match="skip_chain"):
        create_regvit("vit_tiny_patch16_224", depth=4, skip_chain="nearest")
    torch.manual_seed(0)
    a = create_regvit("vit_tiny_patch16_224", depth=6, img_size=32, skip_layers=(2, 3, 4)).eval()
    b = create_regvit("vit_tiny_patch16_224", depth=6, img_size=32, skip_layers=(2, 3, 4), skip_chain="phi").eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))  # contiguous skips: both rules agree
