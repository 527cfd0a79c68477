"""The registered mmseg backbone and the linear probe head."""
import pytest
import torch
import torch.nn.functional as F

from dense_adapters.errors import CheckpointError
from dense_adapters.registry import MODELS
from dense_adapters.utils import register_all_modules

register_all_modules()
TINY = dict(type="dense_adapters.RegViT", img_size=56, patch_size=14, embed_dim=48, depth=3, num_heads=4,
            num_register_tokens=4)


def test_outputs_at_out_indices_with_cls_tokens():
    b = MODELS.build(dict(TINY, out_indices=(0, -1), output_cls_token=True)).eval()
    x = torch.randn(2, 3, 42, 70)
    outs = b(x)
    assert len(outs) == 2 and outs[0][0].shape == (2, 48, 3, 5) and outs[0][1].shape == (2, 48)
    maps, prefix = b.vit.forward_intermediates(x, [0, 2], return_prefix_tokens=True)
    assert torch.equal(outs[1][0], maps[1]) and torch.equal(outs[1][1], prefix[1][:, 0])
    plain = MODELS.build(dict(TINY, out_indices=(1,), final_norm=False))
    assert plain(x)[0].shape == (2, 48, 3, 5)


def test_frozen_mode_for_linear_probing():
    b = MODELS.build(dict(TINY, drop_path_rate=0.5, frozen=True))
    b.train()
    assert not b.vit.training and not any(p.requires_grad for p in b.parameters())
    x = torch.randn(2, 3, 56, 56)
    assert torch.equal(b(x)[0], b(x)[0])  # eval mode: drop path off, deterministic
    assert not b(x)[0].requires_grad


def test_pretrained_init_cfg_converts_and_reports(tmp_path, caplog):
    src = MODELS.build(TINY)
    torch.save({f"backbone.vit.{k}": v for k, v in src.vit.state_dict().items()}, tmp_path / "ckpt.pth")
    dst = MODELS.build(dict(TINY, skip_layers=(2,), init_cfg=dict(type="Pretrained", checkpoint=str(tmp_path / "ckpt.pth"),
                                                                   source="native")))
    dst.init_weights()
    assert torch.equal(dst.vit.blocks[1].attn.qkv.weight, src.vit.blocks[1].attn.qkv.weight)
    missing = MODELS.build(dict(TINY, init_cfg=dict(type="Pretrained", checkpoint=str(tmp_path / "none.pth"))))
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        missing.init_weights()


def test_unknown_preset_fails_clearly():
    with pytest.raises(ValueError, match="unknown preset 'dinov3'"):
        MODELS.build(dict(type="dense_adapters.RegViT", preset="dinov3"))


def test_linear_probe_head_is_bn_plus_1x1_conv_over_patch_and_cls():
    head = MODELS.build(dict(type="dense_adapters.LinearProbeHead", in_channels=[48, 48], in_index=[0, 1],
                             use_cls_token=True, upsample=2, num_classes=5)).eval()
    assert head.channels == 192
    feats = [[torch.randn(2, 48, 3, 5), torch.randn(2, 48)], [torch.randn(2, 48, 3, 5), torch.randn(2, 48)]]
    x = torch.cat([torch.cat([p, c[:, :, None, None].expand_as(p)], 1) for p, c in feats], 1)
    x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    bn = head.bn
    ref = (x - bn.running_mean[None, :, None, None]) / torch.sqrt(bn.running_var[None, :, None, None] + bn.eps)
    ref = ref * bn.weight[None, :, None, None] + bn.bias[None, :, None, None]
    ref = F.conv2d(ref, head.conv_seg.weight, head.conv_seg.bias)
    assert torch.allclose(head(feats), ref, atol=1e-5)
    with pytest.raises(ValueError, match="output_cls_token=True"):
        head([torch.randn(2, 48, 3, 5)] * 2)


def test_test_time_register_backbone_keeps_keys_and_outputs_shapes():
    plain = MODELS.build(TINY).eval()
    tt = MODELS.build(dict(TINY, type="dense_adapters.TTRegViT", register_neurons={1: [3, 5]})).eval()
    assert tt.num_prefix_tokens == plain.num_prefix_tokens + 1
    assert tt.state_dict().keys() == plain.state_dict().keys()
    tt.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 42, 56)
    assert tt(x)[0].shape == plain(x)[0].shape == (1, 48, 3, 4)


def test_with_cp_is_gradient_checkpointing_with_the_same_numbers():
    plain = MODELS.build(dict(TINY, out_indices=(1, 2))).train()
    cp = MODELS.build(dict(TINY, out_indices=(1, 2), with_cp=True)).train()
    cp.load_state_dict(plain.state_dict())
    assert cp.vit.grad_checkpointing and not plain.vit.grad_checkpointing
    x = torch.randn(2, 3, 56, 42)
    grads = []
    for m in (plain, cp):
        out = m(x)
        sum(o.square().mean() for o in out).backward()
        grads.append(torch.cat([p.grad.flatten() for p in m.parameters()]))
    assert torch.allclose(grads[0], grads[1], rtol=1e-5, atol=1e-8)


def test_dinov3_preset_and_a_hugging_face_folder_as_init_cfg(tmp_path):
    transformers = pytest.importorskip("transformers")
    cfg = transformers.DINOv3ViTConfig(hidden_size=384, intermediate_size=1536, num_hidden_layers=2,
                                       num_attention_heads=6, num_register_tokens=4, layerscale_value=1e-5)
    hf = transformers.DINOv3ViTModel(cfg).eval()
    hf.save_pretrained(tmp_path / "hf")
    b = MODELS.build(dict(type="dense_adapters.RegViT", preset="dinov3_vits16", depth=2, out_indices=(0, 1),
                          init_cfg=dict(type="Pretrained", checkpoint=str(tmp_path / "hf"))))
    b.init_weights()
    b.eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        maps = b(x)
        ref = hf.norm(hf(pixel_values=x, output_hidden_states=True).hidden_states[1])[:, 5:]
    assert [m.shape for m in maps] == [(1, 384, 4, 6)] * 2
    assert (maps[0].flatten(2).transpose(1, 2) - ref).abs().max() <= 1e-4


def test_dinov3_preset_gives_every_trainable_parameter_a_gradient():
    """DDP without find_unused_parameters needs a gradient for every parameter: the mask token (masked pretraining
    only) takes part in the graph through 0 * mask_token, as in DINOv3, so fine-tuning configs need no flag."""
    b = MODELS.build(dict(type="dense_adapters.RegViT", preset="dinov3_vits16", embed_dim=32, depth=2, num_heads=2,
                          out_indices=(0, 1)))
    b.train()
    sum(m.square().mean() for m in b(torch.randn(2, 3, 32, 48))).backward()
    assert b.vit.mask_token is not None
    assert [n for n, p in b.named_parameters() if p.requires_grad and p.grad is None] == []
    assert torch.count_nonzero(b.vit.mask_token.grad) == 0  # and the token is not changed by it
