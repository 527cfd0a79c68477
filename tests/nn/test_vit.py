"""RegViT against timm's VisionTransformer and the papers' definitions."""
import math

import pytest
import timm
import torch
import torch.nn.functional as F
from timm.layers import SwiGLUPacked

from dense_adapters.nn import RegViT
from dense_adapters.nn.convert import adapt_to_model, convert_dinov2, convert_timm

TINY = dict(embed_dim=48, depth=3, num_heads=4)


def _randomize(model: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)


def _timm_reg4(**kw) -> torch.nn.Module:
    m = timm.create_model("vit_small_patch14_reg4_dinov2", pretrained=False, img_size=56, **TINY, **kw)
    _randomize(m)
    return m.eval()


def _ours_from(sd, **kw) -> RegViT:
    m = RegViT(img_size=56, patch_size=14, init_values=1.0, interpolate_antialias=True, **TINY, **kw).eval()
    sd, report = adapt_to_model(sd, m)
    assert not report.missing and not report.unexpected
    m.load_state_dict(sd)
    return m


def _timm_to_dinov2(sd: dict, cls_pos: torch.Tensor) -> dict:
    """Rewrite a timm reg4 (no_embed_class) state dict in DINOv2's own names and pos-embed layout."""
    out = {}
    for k, v in sd.items():
        k = k.replace("reg_token", "register_tokens").replace("mlp.fc1.", "mlp.w12.").replace("mlp.fc2.", "mlp.w3.")
        out[k] = v.clone()
    out["cls_token"] = sd["cls_token"] - cls_pos
    out["pos_embed"] = torch.cat([cls_pos, sd["pos_embed"]], dim=1)
    out["mask_token"] = torch.zeros(1, sd["cls_token"].shape[-1])
    return out


@pytest.mark.parametrize("hw", [(56, 56), (42, 70)])
def test_matches_timm_reg4_dinov2(hw):
    t = _timm_reg4(dynamic_img_size=True)
    ours = _ours_from(convert_timm(t.state_dict()), num_register_tokens=4)
    x = torch.randn(2, 3, *hw)
    with torch.no_grad():
        ref = t.forward_features(x)
        out = ours(x)
    assert out.shape == ref.shape
    assert (out - ref).abs().max() <= 1e-5


def test_dinov2_converter_matches_timm():
    t = _timm_reg4()
    dino_sd = _timm_to_dinov2(t.state_dict(), torch.randn(1, 1, TINY["embed_dim"]))
    ours = _ours_from(convert_dinov2(dino_sd), num_register_tokens=4)
    x = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        assert (ours(x) - t.forward_features(x)).abs().max() <= 1e-5


def test_dinov2_swiglu_and_chunked_blocks_match_timm():
    t = timm.create_model("vit_small_patch14_reg4_dinov2", pretrained=False, img_size=56, **TINY,
                          mlp_ratio=2.66667 * 2, mlp_layer=SwiGLUPacked, act_layer=torch.nn.SiLU)
    _randomize(t)
    t.eval()
    dino_sd = _timm_to_dinov2(t.state_dict(), torch.zeros(1, 1, TINY["embed_dim"]))
    # DINOv2's chunked layout: blocks.<chunk>.<index>
    dino_sd = {k.replace("blocks.", "blocks.0.", 1) if k.startswith("blocks.") else k: v for k, v in dino_sd.items()}
    ours = _ours_from(convert_dinov2(dino_sd), num_register_tokens=4, ffn_layer="swiglu")
    x = torch.randn(1, 3, 56, 56)
    with torch.no_grad():
        assert (ours(x) - t.forward_features(x)).abs().max() <= 1e-5


def test_matches_timm_classic_vit_with_cls_pos_embed():
    t = timm.create_model("vit_base_patch16_224", pretrained=False, img_size=64, **TINY)
    _randomize(t)
    t.eval()
    ours = RegViT(img_size=64, patch_size=16, interpolate_antialias=True, **TINY).eval()
    sd, report = adapt_to_model(convert_timm(t.state_dict()), ours)
    assert not report.missing and not report.unexpected
    ours.load_state_dict(sd)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert (ours(x) - t.forward_features(x)).abs().max() <= 1e-5


def test_dinov2_offset_interpolation_formula():
    """Position embeddings resized as DINOv2 does without registers: scale_factor (n + 0.1) / N, no antialias."""
    m = RegViT(img_size=56, patch_size=14, interpolate_offset=0.1, **TINY)
    h, w = 3, 6
    pe = m.pos_embed.reshape(1, 4, 4, -1).permute(0, 3, 1, 2)
    ref = F.interpolate(pe, scale_factor=((h + 0.1) / 4, (w + 0.1) / 4), mode="bicubic", antialias=False)
    ref = ref.flatten(2).transpose(1, 2)
    assert torch.equal(m.interpolate_pos_embed((h, w)), ref)
    assert m.interpolate_pos_embed((4, 4)) is m.pos_embed


def test_token_layout_and_outputs():
    m = RegViT(img_size=56, patch_size=14, num_register_tokens=3, **TINY).eval()
    assert m.num_prefix_tokens == 4
    x = torch.randn(2, 3, 42, 70)
    tokens, hw = m.prepare_tokens(x)
    assert hw == (3, 5) and tokens.shape == (2, 4 + 15, 48)
    assert torch.equal(tokens[0, 0], m.cls_token[0, 0]) and torch.equal(tokens[0, 1:4], m.reg_token[0])
    maps, prefix = m.forward_intermediates(x, indices=[0, -1], return_prefix_tokens=True)
    assert [t.shape for t in maps] == [(2, 48, 3, 5)] * 2 and prefix[1].shape == (2, 4, 48)
    feats = m.forward_features(x)
    assert torch.allclose(feats["x_norm_patchtokens"].transpose(1, 2).reshape(2, 48, 3, 5), maps[1])
    assert torch.allclose(feats["x_norm_regtokens"], prefix[1][:, 1:])
    assert torch.allclose(feats["x_norm_clstoken"], prefix[1][:, 0])
    assert len(m.forward_intermediates(x, indices=2)) == 2  # int: the last n blocks


def test_pad_modes():
    x = torch.randn(1, 3, 50, 60)
    for mode, hw in (("center", (4, 5)), ("corner", (4, 5)), ("resize", (4, 4))):
        m = RegViT(img_size=56, patch_size=14, pad_mode=mode, **TINY)
        assert m.forward_intermediates(x)[0].shape[-2:] == hw
    with pytest.raises(ValueError, match="not a multiple of the patch size 14"):
        RegViT(img_size=56, patch_size=14, pad_mode="error", **TINY)(x)
    # center padding splits the pad evenly: 50 -> 56 rows (3 above), 60 -> 70 columns (5 left)
    m = RegViT(img_size=56, patch_size=14, pad_mode="center", **TINY)
    assert torch.equal(m._fit_input(x)[..., 3:53, 5:65], x)


def test_sdpa_equals_explicit_and_attention_rows_sum_to_one():
    fused = RegViT(img_size=56, patch_size=14, num_register_tokens=2, **TINY).eval()
    explicit = RegViT(img_size=56, patch_size=14, num_register_tokens=2, fused_attn=False, **TINY).eval()
    explicit.load_state_dict(fused.state_dict())
    x = torch.randn(2, 3, 56, 70)
    with torch.no_grad():
        assert (fused(x) - explicit(x)).abs().max() <= 1e-5
        res = fused.forward_blocks(x, [0, 2], capture=("attn", "q", "k", "v", "out"))
    assert [a.shape for a in res["attn"]] == [(2, 4, 23, 23)] * 2
    assert torch.allclose(res["attn"][1].sum(-1), torch.ones(2, 4, 23), atol=1e-5)
    q, k, v = res["q"][1], res["k"][1], res["v"][1]
    assert torch.allclose(res["attn"][1], ((q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)).softmax(-1), atol=1e-6)


def test_registers_and_every_parameter_get_gradients():
    m = RegViT(img_size=56, patch_size=14, num_register_tokens=4, init_values=1e-1, skip_layers=(1,), **TINY)
    m(torch.randn(2, 3, 56, 42)).pow(2).mean().backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []
    assert m.reg_token.grad.abs().sum() > 0


def test_bad_arguments_fail_clearly():
    with pytest.raises(ValueError, match="block 0"):
        RegViT(skip_layers=(0, 1), **TINY)
    with pytest.raises(ValueError, match="unknown arch"):
        RegViT(arch="huge")
    with pytest.raises(ValueError, match="not divisible"):
        RegViT(embed_dim=50, depth=1, num_heads=4)
    with pytest.raises(ValueError, match="SkipAt blocks"):
        RegViT(img_size=56, patch_size=14, skip_layers=(1,), **TINY).forward_blocks(torch.randn(1, 3, 56, 56), [1],
                                                                                    capture=("attn",))
    assert math.isfinite(float(RegViT(img_size=28, patch_size=14, **TINY)(torch.randn(1, 3, 28, 28)).sum()))


@pytest.mark.parametrize("rope", [False, True])
def test_gradient_checkpointing_gives_the_same_outputs_and_gradients(rope):
    kw = dict(TINY, img_size=56, patch_size=14, num_register_tokens=2, init_values=0.5, drop_path_rate=0.3,
              skip_layers=(2,), attn_drop_rate=0.1)
    if rope:
        kw.update(use_pos_embed=False, rope=True, rope_rescale_coords=2.0)  # random train-time RoPE too
    plain = RegViT(**kw).train()
    ckpt = RegViT(**kw, grad_checkpointing=True).train()
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 42, 70)
    outs, calls = [], {id(plain): 0, id(ckpt): 0}
    for m in (plain, ckpt):
        m.blocks[0].attn.qkv.register_forward_hook(lambda mod, a, o, m=m: calls.__setitem__(id(m), calls[id(m)] + 1))
        torch.manual_seed(3)  # same dropout / drop-path / RoPE draws
        out = m.forward_intermediates(x, indices=[1, 2])
        sum(o.square().mean() for o in out).backward()
        outs.append(out)
    assert all(torch.equal(a, b) for a, b in zip(*outs))
    assert calls[id(plain)] == 1 and calls[id(ckpt)] == 2  # the checkpointed block ran again in the backward
    for (n, p), q in zip(plain.named_parameters(), ckpt.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-5, atol=1e-7), n
    ckpt.set_grad_checkpointing(False)
    assert not ckpt.grad_checkpointing


def test_meta_device_build_and_init_weights_leave_nothing_unset():
    kw = dict(TINY, img_size=56, patch_size=14, num_register_tokens=4, init_values=1e-5, skip_layers=(1,),
              mask_token=True, norm_pre=True, use_pos_embed=False, rope=True)
    with torch.device("meta"):
        m = RegViT(**kw)
    m.to_empty(device="cpu")
    with torch.no_grad():
        for t in list(m.parameters()) + list(m.buffers()):
            t.fill_(float("nan"))  # whatever to_empty left: garbage
    m.init_weights()
    bad = [n for n, t in list(m.named_parameters()) + list(m.named_buffers()) if not torch.isfinite(t).all()]
    assert bad == []
    assert torch.equal(m.blocks[0].norm1.weight, torch.ones(48)) and not m.blocks[0].norm1.bias.any()
    assert torch.equal(m.blocks[0].ls1.gamma, torch.full((48,), 1e-5)) and not m.mask_token.any()
    assert torch.equal(m.rope_embed.periods, RegViT(**kw).rope_embed.periods)
    assert torch.isfinite(m(torch.randn(1, 3, 56, 56))).all()


def test_capturing_qkv_projects_once():
    m = RegViT(**TINY, img_size=56, patch_size=14).eval()
    calls = []
    m.blocks[2].attn.qkv.register_forward_hook(lambda *a: calls.append(1))
    res = m.forward_blocks(torch.randn(1, 3, 56, 56), [2], capture=("q", "k", "v", "out", "attn"))
    assert len(calls) == 1 and res["k"][0].shape == (1, 4, 17, 12)


@pytest.mark.parametrize("grad_checkpointing", [False, True])
def test_forward_hooks_on_blocks_fire_and_can_edit_the_output(grad_checkpointing):
    """Blocks are called as modules (``blk(...)``), so forward (pre-)hooks registered on ``blocks[i]`` (by a user,
    mmengine, the analysis tools) run on every path: ``forward``, ``forward_blocks`` with q/k/v capture, and under
    gradient checkpointing; a hook that returns a new output replaces the block's output."""
    m = RegViT(**TINY, img_size=56, patch_size=14, skip_layers=(2,), grad_checkpointing=grad_checkpointing).train()
    x = torch.randn(1, 3, 56, 56)
    seen = []
    pre = m.blocks[1].register_forward_pre_hook(lambda mod, args: seen.append(("pre", args[0].shape)))
    post = [blk.register_forward_hook(lambda mod, args, out, i=i: seen.append((i, type(out).__name__)))
            for i, blk in enumerate(m.blocks)]
    torch.manual_seed(0)
    base = m(x)
    assert seen == [(0, "BlockOutput"), ("pre", (1, 17, 48)), (1, "BlockOutput"), (2, "BlockOutput")]
    seen.clear()
    m.forward_blocks(x, [1], capture=("q", "out"))  # forward_capture runs through the module call too
    assert seen == [(0, "BlockOutput"), ("pre", (1, 17, 48)), (1, "BlockOutput")]
    for h in [pre, *post]:
        h.remove()
    edit = m.blocks[2].register_forward_hook(lambda mod, args, out: out._replace(x=out.x * 0))
    torch.manual_seed(0)
    zeroed = m(x)
    assert torch.allclose(zeroed, m.norm(torch.zeros_like(base))) and not torch.allclose(zeroed, base)
    edit.remove()
