"""DINOv3 presets against timm's port (``timm/models/eva.py``, ``rope_type='dinov3'``), and Meta's ``.pth`` format
checked through timm's own Meta-to-timm ``checkpoint_filter_fn`` as the independent reference.

Random weights (std 0.2, so that every block matters), fp32. The S-width models keep their full width and heads
but fewer blocks (timm's ``depth=`` kwarg): the equivalence is per block, so depth adds nothing but time; one test
runs the full 12-block ViT-S/16.
"""
import pytest
import timm
import torch
from timm.models.eva import checkpoint_filter_fn

from dense_adapters.nn import PRESETS, RegViT, create_regvit, load_pretrained
from dense_adapters.nn.convert import adapt_to_model, convert_timm

SIZES = [(224, 224), (320, 480), (208, 336)]  # square, wide, an odd grid (13 x 21)
PAIRS = {"vit_small_patch16_dinov3": "dinov3_vits16", "vit_small_plus_patch16_dinov3": "dinov3_vits16plus"}


def _randomize(model: torch.nn.Module, seed: int = 0, std: float = 0.2) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)


def _timm(name: str, **kw) -> torch.nn.Module:
    m = timm.create_model(name, pretrained=False, num_classes=0, **kw)
    _randomize(m)
    return m.eval()


def _ours_from_timm(t: torch.nn.Module, preset: str, **kw) -> RegViT:
    ours = create_regvit(preset, **kw).eval()
    sd, report = adapt_to_model(convert_timm(t.state_dict()), ours, "timm")
    assert report.complete and report.new == ["mask_token"]  # timm's Eva has no mask token
    ours.load_state_dict(sd, strict=False)
    return ours


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_equals_timm_dinov3_at_three_sizes(name):
    t = _timm(name, depth=2)
    ours = _ours_from_timm(t, PAIRS[name], depth=2)
    for hw in SIZES:
        x = torch.randn(1, 3, *hw)
        with torch.no_grad():
            ref_all = t.forward_features(x)  # all tokens after the final norm
            ref_int = t.forward_intermediates(x, indices=[0, 1], norm=True, intermediates_only=True)
            out_all = ours(x)
            out_int = ours.forward_intermediates(x, indices=[0, 1], norm=True)
        assert out_all.shape == ref_all.shape
        assert (out_all - ref_all).abs().max() <= 1e-4, hw
        for a, b in zip(out_int, ref_int):
            assert a.shape == b.shape == (1, 384, hw[0] // 16, hw[1] // 16) and (a - b).abs().max() <= 1e-4


def test_full_vits16_and_an_input_that_is_no_patch_multiple():
    t = _timm("vit_small_patch16_dinov3", dynamic_img_pad=True)  # timm pads bottom/right
    ours = _ours_from_timm(t, "dinov3_vits16", pad_mode="corner")
    assert ours.depth == 12 and ours.num_prefix_tokens == 5
    x = torch.randn(1, 3, 200, 300)  # padded to 208 x 304
    with torch.no_grad():
        assert (ours(x) - t.forward_features(x)).abs().max() <= 1e-4


def test_presets_have_timms_architectures():
    """Every DINOv3 preset, built on the meta device, has the tensors (names after conversion, shapes) of timm's
    model of the same size: hidden widths of S+/H+/7B SwiGLU, 7B without qkv bias, 4 registers, no pos_embed."""
    names = {"dinov3_vits16": "vit_small_patch16_dinov3_qkvb", "dinov3_vits16plus": "vit_small_plus_patch16_dinov3_qkvb",
             "dinov3_vitb16": "vit_base_patch16_dinov3_qkvb", "dinov3_vitl16": "vit_large_patch16_dinov3_qkvb",
             "dinov3_vith16plus": "vit_huge_plus_patch16_dinov3_qkvb", "dinov3_vit7b16": "vit_7b_patch16_dinov3"}
    for preset, timm_name in names.items():
        with torch.device("meta"):
            t = timm.create_model(timm_name, pretrained=False, num_classes=0)
            ours = create_regvit(preset)
        ref = {k: tuple(v.shape) for k, v in convert_timm(t.state_dict()).items()}
        own = {k: tuple(v.shape) for k, v in ours.state_dict().items() if k != "mask_token"}
        if preset == "dinov3_vit7b16":  # timm emits a zero bias for the bias-free qkv; the 7B model has none
            ref = {k: v for k, v in ref.items() if not k.endswith("attn.qkv.bias")}
        assert own == ref, preset
    assert PRESETS["dinov3_vit7b16"]["qkv_bias"] is False
    with torch.device("meta"):
        assert create_regvit("dinov3_vith16plus").blocks[0].mlp.fc1.out_features == 2 * 5120


def _meta_state_dict(t: torch.nn.Module) -> dict:
    """A timm DINOv3 model's weights written in Meta's layout (the inverse of timm's checkpoint filter), with a
    random K bias that ``bias_mask`` must zero, bf16 periods and a mask token, as in the released files."""
    out = {}
    for k, v in t.state_dict().items():
        k = k.replace("reg_token", "storage_tokens").replace("gamma_1", "ls1.gamma").replace("gamma_2", "ls2.gamma")
        k = k.replace("mlp.fc1_g", "mlp.w1").replace("mlp.fc1_x", "mlp.w2")
        if ".mlp.fc2." in k and any(".mlp.fc1_g." in n for n in t.state_dict()):
            k = k.replace("mlp.fc2", "mlp.w3")
        out[k] = v.clone()
    for k in [k for k in out if k.endswith("attn.q_bias")]:
        p = k[: -len("q_bias")]
        q, v = out.pop(k), out.pop(p + "v_bias")
        out[p + "qkv.bias"] = torch.cat([q, torch.randn_like(q), v])
        mask = torch.ones(3 * q.shape[0])
        mask[q.shape[0] : 2 * q.shape[0]] = 0
        out[p + "qkv.bias_mask"] = mask
    D = t.embed_dim // t.blocks[0].attn.num_heads
    out["rope_embed.periods"] = (100 ** (2 * torch.arange(D // 4, dtype=torch.bfloat16) / (D // 2)))
    out["mask_token"] = torch.randn(1, t.embed_dim)
    return out


@pytest.mark.parametrize("name", ["vit_small_patch16_dinov3_qkvb", "vit_small_plus_patch16_dinov3_qkvb"])
def test_meta_pth_through_timms_checkpoint_filter(name, tmp_path):
    preset = "dinov3_vits16plus" if "plus" in name else "dinov3_vits16"
    src = _timm(name, depth=2)
    meta = _meta_state_dict(src)
    torch.save(meta, tmp_path / "dinov3.pth")
    ref = timm.create_model(name, pretrained=False, num_classes=0, depth=2).eval()
    ref.load_state_dict(checkpoint_filter_fn(dict(meta), ref), strict=True)  # timm's own Meta-to-timm mapping
    ours = create_regvit(preset, depth=2).eval()
    report = load_pretrained(ours, str(tmp_path / "dinov3.pth"))
    assert report.source == "dinov3" and report.detected and report.complete and not report.new
    assert torch.equal(ours.mask_token, meta["mask_token"])
    assert "rope_embed.periods" in str(report) and any("bf16" in n for n in report.notes)
    x = torch.randn(1, 3, 112, 160)
    with torch.no_grad():
        assert (ours(x) - ref.forward_features(x)).abs().max() <= 1e-4
        # Meta's own model runs on the stored (bf16-rounded) periods: rope_periods_dtype='bf16' reproduces that
        ours16 = create_regvit(preset, depth=2, rope_periods_dtype="bf16").eval()
        load_pretrained(ours16, str(tmp_path / "dinov3.pth"))
        ref.rope.periods.copy_(meta["rope_embed.periods"].float())
        assert (ours16(x) - ref.forward_features(x)).abs().max() <= 1e-4


def test_nan_bias_mask_never_reaches_the_model(tmp_path):
    src = _timm("vit_small_patch16_dinov3_qkvb", depth=1)
    meta = _meta_state_dict(src)
    for k in [k for k in meta if k.endswith("bias_mask")]:
        meta[k] = torch.full_like(meta[k], float("nan"))  # upstream's uninitialised buffer
    torch.save(meta, tmp_path / "nan_mask.pth")
    ours = create_regvit("dinov3_vits16", depth=1).eval()
    load_pretrained(ours, str(tmp_path / "nan_mask.pth"))
    ref = timm.create_model("vit_small_patch16_dinov3_qkvb", pretrained=False, num_classes=0, depth=1).eval()
    ref.load_state_dict(checkpoint_filter_fn(dict(meta), ref))
    bias = ours.blocks[0].attn.qkv.bias
    assert torch.isfinite(bias).all() and not bias[384:768].any()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        out = ours(x)
        assert torch.isfinite(out).all() and (out - ref.forward_features(x)).abs().max() <= 1e-4


def test_plain_timm_variant_loads_its_missing_qkv_bias_as_zeros():
    t = _timm("vit_small_patch16_dinov3", depth=1)  # no qkv bias at all (the distilled models' biases are zero)
    ours = _ours_from_timm(t, "dinov3_vits16", depth=1)
    assert ours.blocks[0].attn.qkv.bias is not None and not ours.blocks[0].attn.qkv.bias.any()
    no_bias = RegViT(**{**PRESETS["dinov3_vits16"], "depth": 1, "qkv_bias": False}).eval()
    sd, report = adapt_to_model(convert_timm(t.state_dict()), no_bias, "timm")
    assert report.complete and "all-zero bias" in str(report)
    no_bias.load_state_dict(sd, strict=False)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert (ours(x) - t.forward_features(x)).abs().max() <= 1e-4
        assert (no_bias(x) - t.forward_features(x)).abs().max() <= 1e-4
