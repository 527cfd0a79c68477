"""OpenCLIP image towers (against open_clip's VisionTransformer, pretrained=None) and mmseg-format ViTs (against
mmseg's VisionTransformer): same tokens and intermediate maps after conversion."""
import pytest
import torch

from dense_adapters.nn import PRESETS, RegViT, create_regvit, load_pretrained
from dense_adapters.nn.convert import adapt_to_model, convert_mmseg, convert_openclip, detect_source


def _randomize(model: torch.nn.Module, seed: int = 0, std: float = 0.1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)


def _clip(quick_gelu: bool):
    open_clip = pytest.importorskip("open_clip")
    from open_clip.model import CLIPTextCfg, CLIPVisionCfg

    # ViT-B/16's layout (patch 16, ln_pre, no conv bias, ln_post, proj) at a test size: width 64, 2 blocks
    model = open_clip.CLIP(embed_dim=32, vision_cfg=CLIPVisionCfg(layers=2, width=64, head_width=16, patch_size=16,
                                                                  image_size=64),
                           text_cfg=CLIPTextCfg(context_length=8, vocab_size=100, width=32, heads=2, layers=1),
                           quick_gelu=quick_gelu)
    _randomize(model)
    return model.eval()


@pytest.mark.parametrize("quick_gelu", [False, True])
def test_openclip_image_tower(quick_gelu, tmp_path):
    clip = _clip(quick_gelu)
    torch.save(clip.state_dict(), tmp_path / "clip.pth")  # a full CLIP checkpoint: visual.* + the text tower
    preset = "openclip_vitb16_quickgelu" if quick_gelu else "openclip_vitb16"
    ours = create_regvit(preset, embed_dim=64, depth=2, num_heads=4, img_size=64).eval()
    report = load_pretrained(ours, str(tmp_path / "clip.pth"))
    assert report.source == "openclip" and report.complete
    assert "text tower of a CLIP checkpoint" in str(report) and "CLIP image projection" in str(report)
    vis = clip.visual
    vis.output_tokens = True
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        pooled, tokens = vis(x)
        out = ours(x)  # ln_post on every token
        inter = vis.forward_intermediates(x, indices=[0, 1], normalize_intermediates=True, intermediates_only=True)
        maps = ours.forward_intermediates(x, indices=[0, 1])
    assert (out[:, 1:] - tokens).abs().max() <= 1e-5 and (out[:, 0] @ vis.proj - pooled).abs().max() <= 1e-5
    for a, b in zip(maps, inter["image_intermediates"]):
        assert (a - b).abs().max() <= 1e-5
    # the activation is part of the architecture: the wrong one gives another model
    wrong = create_regvit("openclip_vitb16" if quick_gelu else "openclip_vitb16_quickgelu", embed_dim=64, depth=2,
                          num_heads=4, img_size=64).eval()
    load_pretrained(wrong, str(tmp_path / "clip.pth"))
    with torch.no_grad():
        assert (wrong(x)[:, 1:] - tokens).abs().max() > 1e-3
    # the image tower's own state dict (no visual. prefix) too
    sd, rep = adapt_to_model(convert_openclip(vis.state_dict()), ours, "openclip")
    assert rep.complete and detect_source(vis.state_dict()) == "openclip"


@pytest.mark.parametrize("pre_norm", [False, True])
def test_mmseg_vit(pre_norm, tmp_path):
    import dense_adapters.models  # noqa: F401  (mmseg importable under mmcv-lite)
    from mmseg.models.backbones import VisionTransformer

    ref = VisionTransformer(img_size=64, patch_size=16, embed_dims=64, num_layers=2, num_heads=4, out_indices=(0, 1),
                            final_norm=True, pre_norm=pre_norm, norm_cfg=dict(type="LN", eps=1e-6))
    _randomize(ref)
    ref.eval()
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in ref.state_dict().items()}}, tmp_path / "seg.pth")
    ours = RegViT(**{**PRESETS["vit_base_patch16_224"], "embed_dim": 64, "depth": 2, "num_heads": 4,
                     "img_size": 64, "norm_pre": pre_norm}).eval()
    report = load_pretrained(ours, str(tmp_path / "seg.pth"))  # detected: mmseg, not a silent partial 'timm' load
    assert report.source == "mmseg" and report.complete
    assert not ours.patch_embed.proj.bias.any()  # mmseg's conv has no bias (patch_bias=False): zeros
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out = ref(x)  # mmseg: ln1 (final norm) after the last block only
        assert (ours.forward_intermediates(x, indices=[0], norm=False)[0] - out[0]).abs().max() <= 1e-5
        assert (ours.forward_intermediates(x, indices=[1], norm=True)[0] - out[1]).abs().max() <= 1e-5
    assert convert_mmseg(ref.state_dict())["patch_embed.proj.bias"].abs().sum() == 0  # bias-free conv = zero bias
