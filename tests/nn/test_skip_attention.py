"""SkipAt: Phi's definition, skipped blocks, FLOPs, non-square grids."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.analysis import FlopAnalyzer

from dense_adapters.nn import RegViT, SkipAttention

TINY = dict(img_size=56, patch_size=14, embed_dim=48, depth=6, num_heads=4)


def test_phi_matches_its_definition_on_a_non_square_grid():
    phi = SkipAttention(8).eval()
    H, W = 3, 5
    x = torch.randn(2, H * W, 8)
    y = F.gelu(phi.fc1(x))  # [B, HW, 16]
    y = y.transpose(1, 2).reshape(2, 16, H, W)  # row-major grid
    y = F.gelu(F.conv2d(y, phi.dwconv.weight, phi.dwconv.bias, padding=2, groups=16))
    y = phi.fc2(y.flatten(2).transpose(1, 2))  # [B, HW, 8]
    gate = torch.sigmoid(F.conv1d(y.mean(1, keepdim=True), phi.eca.conv.weight, padding=1))  # ECA over channels
    assert torch.allclose(phi(x, (H, W)), y * gate, atol=1e-6)
    assert phi.dwconv.kernel_size == (5, 5) and phi.fc1.out_features == 16
    with pytest.raises(ValueError, match="3x4 grid"):
        phi(x, (3, 4))


def test_skipped_blocks_own_no_attention_parameters():
    m = RegViT(num_register_tokens=2, skip_layers=(2, 3, 4), **TINY)
    for i, blk in enumerate(m.blocks):
        names = {n for n, _ in blk.named_parameters()}
        has_attn = any(n.startswith(("attn.", "norm1.")) for n in names)
        assert has_attn == (i not in (2, 3, 4))
        assert any(n.startswith("skip_fn.") for n in names) == (i in (2, 3, 4))
    base = RegViT(num_register_tokens=2, **TINY)
    qkv_proj = sum(p.numel() for n, p in base.named_parameters() if ".attn." in n) // 6
    assert sum(p.numel() for n, p in m.named_parameters() if ".attn." in n) == 3 * qkv_proj


def test_skip_chain_prefix_tokens_and_identity_mode():
    m = RegViT(num_register_tokens=2, skip_layers=(2, 3), skip_mode="identity", **TINY).eval()
    res = m.forward_blocks(torch.randn(2, 3, 42, 70), [1, 2, 3], capture=("attn_out",))
    a1, a2, a3 = res["attn_out"]
    assert torch.equal(a2, a1) and torch.equal(a3, a1)
    p = RegViT(num_register_tokens=2, skip_layers=(2, 3), **TINY).eval()
    x = torch.randn(2, 3, 42, 70)
    res = p.forward_blocks(x, [1, 2, 3], capture=("attn_out",))
    a1, a2, a3 = res["attn_out"]
    k = p.num_prefix_tokens
    assert torch.equal(a2[:, :k], a1[:, :k]) and torch.equal(a3[:, :k], a1[:, :k])  # cls + registers reused
    assert torch.allclose(a2[:, k:], p.blocks[2].skip_fn(a1[:, k:], res["hw"]))  # Phi of the previous output
    assert torch.allclose(a3[:, k:], p.blocks[3].skip_fn(a2[:, k:], res["hw"]))  # chained, as the reference
    assert p(x).shape == (2, k + 3 * 5, 48)


def _flops(model, size):
    return FlopAnalyzer(model.eval(), (torch.randn(1, 3, *size),)).unsupported_ops_warnings(False).total()


def test_skipat_reduces_flops():
    # the explicit attention path makes every matmul visible to the counter
    base = RegViT(fused_attn=False, **TINY)
    skip = RegViT(fused_attn=False, skip_layers=(2, 3, 4), **TINY)
    f_base, f_skip = _flops(base, (112, 168)), _flops(skip, (112, 168))
    assert f_skip < f_base
    # per skipped block: attention costs 4*N*C^2 (qkv, proj) + 2*N^2*C (scores, weighted sum) multiply-adds,
    # Phi costs 2*N*C*2C (two linears) + 25*N*2C (depthwise conv) + ECA: the difference must show up
    N, C = 1 + 8 * 12, 48
    attn = 4 * N * C * C + 2 * N * N * C
    phi = 4 * (N - 1) * C * C + 25 * (N - 1) * 2 * C
    assert f_base - f_skip == pytest.approx(3 * (attn - phi), rel=0.05)
