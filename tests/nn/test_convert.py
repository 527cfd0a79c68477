"""Checkpoint conversion and loading: key names, reports, safe loading, clear errors."""
import os

import pytest
import timm
import torch

from dense_adapters.errors import CheckpointError, CheckpointMismatch, UntrustedCheckpoint
from dense_adapters.nn import RegViT, load_pretrained
from dense_adapters.nn.convert import adapt_to_model, cached_path, convert_deit3, detect_source, load_file

TINY = dict(embed_dim=48, depth=2, num_heads=4)


def test_deit3_checkpoint_names_and_detection(tmp_path):
    t = timm.create_model("deit3_small_patch16_224", pretrained=False, img_size=64, init_values=0.5, **TINY).eval()
    # DeiT-III's own release names LayerScale 'gamma_1'/'gamma_2' and wraps weights under 'model'
    sd = {k.replace("ls1.gamma", "gamma_1").replace("ls2.gamma", "gamma_2"): v for k, v in t.state_dict().items()}
    torch.save({"model": sd}, tmp_path / "deit3.pth")
    assert detect_source({"model": sd}) == "deit3"
    ours = RegViT(img_size=64, patch_size=16, init_values=1e-6, interpolate_antialias=True, **TINY).eval()
    report = load_pretrained(ours, str(tmp_path / "deit3.pth"))
    assert report.source == "deit3" and not report.missing and report.unexpected == []
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert (ours(x) - t.forward_features(x)).abs().max() <= 1e-5
    assert "gamma_1" not in str(list(convert_deit3({"model": sd})))


def test_report_resize_and_skipped_attention(tmp_path):
    src = RegViT(img_size=56, patch_size=14, num_register_tokens=4, **TINY)
    torch.save({"state_dict": {f"backbone.vit.{k}": v for k, v in src.state_dict().items()},
                "meta": {"note": "segmentor checkpoint"}}, tmp_path / "seg.pth")
    dst = RegViT(img_size=98, patch_size=14, num_register_tokens=4, skip_layers=(1,), final_norm=False, **TINY)
    # the model has no final norm: the checkpoint's norm would go unused -> refused unless asked for
    with pytest.raises(CheckpointMismatch, match=r"2 checkpoint tensors would go unused \(norm.weight, norm.bias\)"):
        load_pretrained(dst, str(tmp_path / "seg.pth"), source="native")
    report = load_pretrained(dst, str(tmp_path / "seg.pth"), source="native", partial=True)
    assert report.partial and "[PARTIAL LOAD]" in str(report)
    assert report.resized == ["pos_embed (7, 7)"]
    assert len(report.skipped_attention) == 6  # norm1 w/b, qkv w/b, proj w/b of block 1
    assert report.unexpected == ["norm.weight", "norm.bias"]
    assert not report.missing and report.new and all(k.startswith("blocks.1.skip_fn.") for k in report.new)  # Phi
    text = str(report)
    assert "unused (attention of SkipAt blocks): 6 tensors" in text and "unexpected (2)" in text
    assert torch.equal(dst.blocks[0].attn.qkv.weight, src.blocks[0].attn.qkv.weight)
    with pytest.raises(CheckpointMismatch, match="unused"):
        load_pretrained(dst, str(tmp_path / "seg.pth"), source="native", strict=True)


def test_register_count_and_architecture_mismatch_fail_in_one_line():
    sd = RegViT(img_size=56, patch_size=14, num_register_tokens=4, **TINY).state_dict()
    with pytest.raises(CheckpointMismatch, match="checkpoint has 4 register tokens but the model has 0: set "
                                         "num_register_tokens=4"):
        adapt_to_model(sd, RegViT(img_size=56, patch_size=14, **TINY))
    sd = RegViT(img_size=56, patch_size=14, embed_dim=64, depth=2, num_heads=4).state_dict()
    with pytest.raises(ValueError, match=r"shape mismatches\): .*check arch/patch_size/embed_dim") as e:
        adapt_to_model(sd, RegViT(img_size=56, patch_size=14, **TINY))
    assert "\n" not in str(e.value)


class Payload:  # a pickled object: loading it needs code execution
    pass


def test_pickled_code_is_refused_unless_trusted(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "obj": Payload()}, path)
    with pytest.raises(UntrustedCheckpoint, match="needs arbitrary code to unpickle .*Payload.*, so it was refused"):
        load_file(str(path))
    assert "obj" in load_file(str(path), trust_pickle=True)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_file(str(tmp_path / "nope.pth"))


def test_safetensors(tmp_path):
    from safetensors.torch import save_file

    src = RegViT(img_size=56, patch_size=14, **TINY)
    save_file(src.state_dict(), str(tmp_path / "m.safetensors"))
    dst = RegViT(img_size=56, patch_size=14, **TINY)
    load_pretrained(dst, str(tmp_path / "m.safetensors"), source="native", strict=True)
    assert torch.equal(dst.pos_embed, src.pos_embed)


def test_url_checkpoints_are_downloaded_once_into_the_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    src = RegViT(img_size=56, patch_size=14, **TINY)
    torch.save(src.state_dict(), tmp_path / "remote.pth")
    dst = RegViT(img_size=56, patch_size=14, **TINY)
    load_pretrained(dst, (tmp_path / "remote.pth").as_uri(), source="native", strict=True)
    assert torch.equal(dst.pos_embed, src.pos_embed)
    cached = cached_path((tmp_path / "remote.pth").as_uri())
    assert cached.startswith(str(tmp_path / "hub" / "checkpoints")) and os.path.isfile(cached)
