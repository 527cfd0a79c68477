"""Hugging Face folders against transformers' DINOv3ViTModel / Dinov2Model / Dinov2WithRegistersModel (random weights,
small configs, written by ``save_pretrained``): config.json picks the architecture, published and transformers-5
internal key names both load, sharded folders and the weights file alone work."""
import json
import os

import pytest
import torch

from dense_adapters.errors import CheckpointMismatch
from dense_adapters.nn import RegViT, load_pretrained
from dense_adapters.nn.convert import build_from_checkpoint, regvit_kwargs_from_hf_config

transformers = pytest.importorskip("transformers")


def _randomize(model: torch.nn.Module, seed: int = 0, std: float = 0.2) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)


def _hf(kind: str, **kw):
    small = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4)
    if kind == "dinov3":
        cfg = transformers.DINOv3ViTConfig(**{**small, "intermediate_size": 128, "num_register_tokens": 4,
                                              "image_size": 64, "patch_size": 16, **kw})
        model = transformers.DINOv3ViTModel(cfg)
    elif kind == "dinov2":
        cfg = transformers.Dinov2Config(**small, image_size=56, patch_size=14, **kw)
        model = transformers.Dinov2Model(cfg)
    else:
        cfg = transformers.Dinov2WithRegistersConfig(**small, image_size=56, patch_size=14, num_register_tokens=4,
                                                     **kw)
        model = transformers.Dinov2WithRegistersModel(cfg)
    _randomize(model)
    return model.eval()


CASES = [("dinov3", {}), ("dinov3", dict(use_gated_mlp=True, hidden_act="silu", intermediate_size=96)),
         ("dinov2", {}), ("dinov2", dict(use_swiglu_ffn=True)), ("dinov2_reg", {})]


@pytest.mark.parametrize("kind,kw", CASES, ids=["dinov3", "dinov3-swiglu", "dinov2", "dinov2-swiglu", "dinov2-reg"])
def test_folder_from_save_pretrained_gives_the_same_model(kind, kw, tmp_path):
    hf = _hf(kind, **kw)
    hf.save_pretrained(tmp_path)
    ours, report = build_from_checkpoint(str(tmp_path))  # no preset: config.json gives the architecture
    ours.eval()
    assert report.source == "hf" and report.complete and not report.new
    p = hf.config.patch_size
    for hw in ((hf.config.image_size,) * 2, (3 * p, 5 * p)):  # native size, and one that resizes/rotates
        x = torch.randn(2, 3, *hw)
        with torch.no_grad():
            ref = hf(pixel_values=x).last_hidden_state
            assert (ours(x) - ref).abs().max() <= 1e-5, hw


def test_internal_transformers5_names_and_the_file_alone(tmp_path):
    from safetensors.torch import save_file

    for kind, kw in (("dinov3", dict(use_gated_mlp=True, hidden_act="silu", intermediate_size=96)),
                     ("dinov2", dict(use_swiglu_ffn=True))):
        hf = _hf(kind, **kw)
        folder = tmp_path / kind
        folder.mkdir()
        # the module names transformers 5 uses inside (model.layer.i..., attention.q_proj, mlp.gate_proj/up_proj)
        save_file({k: v.contiguous() for k, v in hf.state_dict().items()}, str(folder / "model.safetensors"))
        (folder / "config.json").write_text(json.dumps(hf.config.to_dict()))
        ours, _ = build_from_checkpoint(str(folder))
        # the weights file alone (no config.json beside it): the architecture comes from the caller
        alone = RegViT(**regvit_kwargs_from_hf_config(hf.config.to_dict())).eval()
        report = load_pretrained(alone, str(folder / "model.safetensors"))
        assert report.source == "hf" and report.complete
        x = torch.randn(1, 3, hf.config.image_size, hf.config.image_size)
        with torch.no_grad():
            ref = hf(pixel_values=x).last_hidden_state
            assert (ours.eval()(x) - ref).abs().max() <= 1e-5 and (alone(x) - ref).abs().max() <= 1e-5


def test_sharded_folder_and_wrong_architecture(tmp_path):
    hf = _hf("dinov2_reg")
    hf.save_pretrained(tmp_path, max_shard_size="60KB")
    assert os.path.isfile(tmp_path / "model.safetensors.index.json")
    ours, report = build_from_checkpoint(str(tmp_path))
    x = torch.randn(1, 3, 56, 56)
    with torch.no_grad():
        assert (ours.eval()(x) - hf(pixel_values=x).last_hidden_state).abs().max() <= 1e-5
    # a preset that does not fit (no registers) is refused in one line, --from that contradicts config.json too
    with pytest.raises(CheckpointMismatch, match="set num_register_tokens=4") as e:
        load_pretrained(RegViT(embed_dim=64, depth=2, num_heads=4, img_size=56, patch_size=14), str(tmp_path))
    assert "\n" not in str(e.value)
    with pytest.raises(CheckpointMismatch, match="is in the 'hf' format .* not 'timm'"):
        load_pretrained(ours, str(tmp_path), source="timm")
