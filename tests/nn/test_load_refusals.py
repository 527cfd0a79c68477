"""Loads that cannot go silently wrong: every mis-load ends in one line, an explicit partial load still works,
new parameters are not missing ones, native checkpoints carry and enforce their SkipAt layout."""
import pytest
import timm
import torch

from dense_adapters.errors import CheckpointError, CheckpointMismatch, UserError
from dense_adapters.nn import RegViT, create_regvit, load_pretrained
from dense_adapters.nn.convert import build_from_checkpoint, detect_source, make_native_checkpoint

TINY = dict(embed_dim=48, depth=3, num_heads=4, img_size=56, patch_size=14)
ROPE = dict(embed_dim=64, depth=2, num_heads=4, img_size=64, patch_size=16, use_pos_embed=False, rope=True,
            num_register_tokens=4, init_values=1e-5, norm_eps=1e-5)


def _raises_one_line(exc, pattern, fn, *a, **kw):
    with pytest.raises(exc, match=pattern) as e:
        fn(*a, **kw)
    assert "\n" not in str(e.value)
    return str(e.value)


def _save(tmp_path, name, obj):
    torch.save(obj, tmp_path / name)
    return str(tmp_path / name)


def test_the_issues_three_misloads(tmp_path):
    # 1. timm's vit_small_patch16_dinov3 state dict: detected as timm (no KeyError 'pos_embed' via "deit3")
    t = timm.create_model("vit_small_patch16_dinov3", pretrained=False, num_classes=0, depth=2)
    path = _save(tmp_path, "timm_dinov3.pth", t.state_dict())
    assert detect_source(t.state_dict()) == "timm"
    report = load_pretrained(create_regvit("dinov3_vits16", depth=2), path)
    assert report.complete and report.source == "timm"
    # ... into a model with a position-embedding table it is refused, saying why
    msg = _raises_one_line(CheckpointMismatch, "would stay uninitialised .*pos_embed", load_pretrained,
                           create_regvit("vit_small_patch16_224", depth=2, num_register_tokens=4), path)
    assert "RoPE preset" in msg and "partial=True" in msg
    # 2. an mmseg-format ViT given as timm: refused (it used to load with every block tensor missing)
    mm = {"cls_token": torch.zeros(1, 1, 48), "pos_embed": torch.zeros(1, 17, 48),
          "patch_embed.projection.weight": torch.zeros(48, 3, 14, 14), "layers.0.ln1.weight": torch.ones(48)}
    path = _save(tmp_path, "mmseg.pth", {"state_dict": mm})
    _raises_one_line(CheckpointMismatch, "is in the 'mmseg' format .* not 'timm'", load_pretrained,
                     RegViT(**TINY), path, source="timm")
    # ... and auto-detected as mmseg it is refused because it is incomplete, not loaded half
    _raises_one_line(CheckpointMismatch, "read as a 'mmseg' checkpoint \\(detected\\), .* uninitialised",
                     load_pretrained, RegViT(**TINY), path)
    # 3. a DINOv2 file given as --from dinov3
    dino = RegViT(**TINY, num_register_tokens=4).state_dict()
    dino = {k.replace("reg_token", "register_tokens"): v for k, v in dino.items()}
    dino["pos_embed"] = torch.cat([torch.zeros(1, 1, 48), dino["pos_embed"]], 1)
    dino["mask_token"] = torch.zeros(1, 48)
    path = _save(tmp_path, "dinov2.pth", dino)
    _raises_one_line(CheckpointMismatch, "'dinov2' format", load_pretrained, RegViT(**TINY, num_register_tokens=4),
                     path, source="dinov3")
    assert load_pretrained(RegViT(**TINY, num_register_tokens=4), path).complete


def test_unknown_unused_and_missing_tensors(tmp_path):
    _raises_one_line(CheckpointError, "cannot tell the format", load_pretrained, RegViT(**TINY),
                     _save(tmp_path, "odd.pth", {"encoder.w": torch.zeros(2)}))
    _raises_one_line(UserError, "unknown checkpoint source 'timmm'", load_pretrained, RegViT(**TINY),
                     _save(tmp_path, "ok.pth", RegViT(**TINY).state_dict()), source="timmm")
    src = RegViT(**TINY).state_dict()
    extra = dict(src, **{"blocks.0.attn.extra_gate": torch.ones(4)})
    path = _save(tmp_path, "extra.pth", extra)
    _raises_one_line(CheckpointMismatch, "1 checkpoint tensors would go unused \\(blocks.0.attn.extra_gate\\)",
                     load_pretrained, RegViT(**TINY), path)
    report = load_pretrained(RegViT(**TINY), path, partial=True)  # asked for: loads, and says so
    assert report.partial and report.unexpected == ["blocks.0.attn.extra_gate"] and "PARTIAL" in str(report)
    fewer = {k: v for k, v in src.items() if not k.startswith("blocks.2.")}
    path = _save(tmp_path, "fewer.pth", fewer)
    _raises_one_line(CheckpointMismatch, "model tensors would stay uninitialised \\(blocks.2.", load_pretrained,
                     RegViT(**TINY), path)
    dst = RegViT(**TINY)
    report = load_pretrained(dst, path, strict=False)  # the other spelling of a partial load
    assert report.partial and all(k.startswith("blocks.2.") for k in report.missing)
    assert torch.equal(dst.blocks[0].attn.qkv.weight, src["blocks.0.attn.qkv.weight"])
    with pytest.raises(UserError, match="contradict"):
        load_pretrained(dst, path, strict=True, partial=True)
    bad = dict(src)
    bad["blocks.1.mlp.fc1.weight"] = torch.full_like(src["blocks.1.mlp.fc1.weight"], float("nan"))
    _raises_one_line(CheckpointError, "blocks.1.mlp.fc1.weight holds NaN", load_pretrained, RegViT(**TINY),
                     _save(tmp_path, "nan.pth", bad))


def test_new_parameters_are_reported_as_new(tmp_path):
    path = _save(tmp_path, "plain.pth", RegViT(**TINY).state_dict())
    skip = RegViT(**TINY, skip_layers=(1,))
    report = load_pretrained(skip, path)  # Phi cannot come from a plain checkpoint: new, not missing
    assert report.complete and report.new and all(".skip_fn." in k for k in report.new)
    assert len(report.skipped_attention) == 6 and "new (the source format has none)" in str(report)
    _raises_one_line(CheckpointMismatch, "strict load, but .* not in the checkpoint", load_pretrained,
                     RegViT(**TINY, skip_layers=(1,)), path, strict=True)
    # a checkpoint that has Phi for some blocks but not others: the rest is missing, not new
    with_phi = RegViT(**TINY, skip_layers=(1, 2)).state_dict()
    partial_phi = {k: v for k, v in with_phi.items() if not k.startswith("blocks.2.skip_fn.")}
    _raises_one_line(CheckpointMismatch, "uninitialised \\(blocks.2.skip_fn", load_pretrained,
                     RegViT(**TINY, skip_layers=(1, 2)), _save(tmp_path, "phi.pth", partial_phi), source="native")


def test_rope_periods_of_a_dinov3_file_are_checked(tmp_path):
    src = RegViT(**ROPE)
    meta = {k.replace("reg_token", "storage_tokens"): v for k, v in src.state_dict().items()}
    meta["rope_embed.periods"] = 100 ** (2 * torch.arange(4, dtype=torch.bfloat16) / 8)
    path = _save(tmp_path, "dinov3.pth", meta)
    assert load_pretrained(RegViT(**ROPE), path).source == "dinov3"
    _raises_one_line(CheckpointMismatch, "RoPE periods .* differ from the model's", load_pretrained,
                     RegViT(**ROPE, rope_base=10.0), path)


def test_native_checkpoint_meta(tmp_path):
    vit = RegViT(**TINY, skip_layers=(1, 2))
    path = _save(tmp_path, "retrofit.pth", make_native_checkpoint(vit, preset=None))
    report = load_pretrained(RegViT(**TINY, skip_layers=(1, 2)), path)  # strict, detected from the meta
    assert report.source == "native" and report.meta["skip_layers"] == [1, 2] and not report.new
    msg = _raises_one_line(CheckpointMismatch, "made with skip_layers=\\[1, 2\\], skip_mode='parametric' but the model"
                           " has skip_layers=\\[\\]", load_pretrained, RegViT(**TINY), path)
    assert "build the model with skip_layers=[1, 2]" in msg
    _raises_one_line(CheckpointMismatch, "skip_mode='identity'", load_pretrained,
                     RegViT(**TINY, skip_layers=(1, 2), skip_mode="identity"), path)
    rebuilt, report = build_from_checkpoint(path)  # the meta's arch_kwargs rebuild it without a preset
    assert rebuilt.skip_layers == (1, 2) and rebuilt.embed_dim == 48
    x = torch.randn(1, 3, 56, 56)
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(x), vit.eval()(x))
    newer = make_native_checkpoint(vit)
    newer["dense_adapters"]["format_version"] = 99
    _raises_one_line(CheckpointError, "format version 99", load_pretrained, RegViT(**TINY, skip_layers=(1, 2)),
                     _save(tmp_path, "newer.pth", newer))
    _raises_one_line(CheckpointMismatch, "names no architecture", build_from_checkpoint,
                     _save(tmp_path, "plain.pth", RegViT(**TINY).state_dict()))


def test_init_cfg_path_refuses_and_allows_partial(tmp_path):
    from dense_adapters.registry import MODELS
    from dense_adapters.utils import register_all_modules

    register_all_modules()
    src = RegViT(**TINY).state_dict()
    path = _save(tmp_path, "fewer.pth", {k: v for k, v in src.items() if not k.startswith("blocks.2.")})
    cfg = dict(type="dense_adapters.RegViT", **TINY)
    refused = MODELS.build(dict(cfg, init_cfg=dict(type="Pretrained", checkpoint=path)))
    with pytest.raises(CheckpointMismatch, match="uninitialised"):
        refused.init_weights()
    allowed = MODELS.build(dict(cfg, init_cfg=dict(type="Pretrained", checkpoint=path, partial=True)))
    allowed.init_weights()
    assert torch.equal(allowed.vit.blocks[0].attn.qkv.weight, src["blocks.0.attn.qkv.weight"])
    typo = MODELS.build(dict(cfg, init_cfg=dict(type="Pretrained", checkpoint=path, partail=True)))
    with pytest.raises(UserError, match="unknown keys \\['partail'\\]"):
        typo.init_weights()


def test_native_dicts_of_hf_built_models_are_not_taken_for_dinov2(tmp_path):
    # a RegViT with a mask token and a patch-only position embedding (as built from a HF DINOv2 config)
    kw = dict(TINY, mask_token=True, init_values=1.0, num_register_tokens=4)
    sd = RegViT(**kw).state_dict()
    assert detect_source(sd) == "native"
    dst = RegViT(**kw)
    assert load_pretrained(dst, _save(tmp_path, "native.pth", sd)).complete
    assert torch.equal(dst.pos_embed, sd["pos_embed"])
