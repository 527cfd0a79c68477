"""RoPE against its definition, timm's RotaryEmbeddingDinoV3 and transformers' DINOv3 RoPE; RoPE with registers,
SkipAt blocks and test-time registers."""
import math

import pytest
import torch

from dense_adapters.errors import UserError
from dense_adapters.nn import RegViT
from dense_adapters.nn.attention import Attention
from dense_adapters.nn.rope import RopePositionEmbedding, rope_apply, rotate_half

ROPE_TINY = dict(embed_dim=64, depth=3, num_heads=4, img_size=64, patch_size=16, use_pos_embed=False, rope=True,
                 num_register_tokens=4, init_values=0.1, norm_eps=1e-5)


def _definition(hw, head_dim, base=100.0, normalize="separate"):
    """sin/cos [h*w, D] written from DINOv3's formula, in float64, loop by loop."""
    h, w = hw
    n = head_dim // 4
    periods = [base ** (2 * k / (head_dim / 2)) for k in range(n)]
    dh, dw = {"separate": (h, w), "max": (max(h, w),) * 2, "min": (min(h, w),) * 2}[normalize]
    rows = []
    for i in range(h):
        for j in range(w):
            y, x = 2 * (i + 0.5) / dh - 1, 2 * (j + 0.5) / dw - 1
            ang = [2 * math.pi * y / p for p in periods] + [2 * math.pi * x / p for p in periods]
            rows.append(ang + ang)
    a = torch.tensor(rows, dtype=torch.float64)
    return a.sin(), a.cos()


@pytest.mark.parametrize("normalize", ["separate", "max", "min"])
def test_tables_follow_the_definition_and_timm(normalize):
    from timm.layers.pos_embed_sincos import RotaryEmbeddingDinoV3

    rope = RopePositionEmbedding(32, normalize_coords=normalize).eval()
    sin, cos = rope((3, 5))
    ref_sin, ref_cos = _definition((3, 5), 32, normalize=normalize)
    assert (sin.double() - ref_sin).abs().max() < 1e-5 and (cos.double() - ref_cos).abs().max() < 1e-5
    timm_rope = RotaryEmbeddingDinoV3(32, temperature=100, normalize_coords=normalize, rotate_half=True).eval()
    t_sin, t_cos = timm_rope.get_embed((3, 5)).chunk(2, -1)
    assert torch.equal(sin, t_sin) and torch.equal(cos, t_cos)
    # min/max-period form
    mm = RopePositionEmbedding(32, min_period=0.5, max_period=40.0)
    timm_mm = RotaryEmbeddingDinoV3(32, temperature=None, min_period=0.5, max_period=40.0, rotate_half=True)
    assert torch.allclose(mm.periods, timm_mm.periods, rtol=1e-6)
    assert torch.allclose(mm.periods, torch.logspace(math.log10(0.5), math.log10(40.0), 8), rtol=1e-5)


def test_tables_equal_transformers_dinov3():
    transformers = pytest.importorskip("transformers")
    from transformers.models.dinov3_vit.modeling_dinov3_vit import DINOv3ViTRopePositionEmbedding

    cfg = transformers.DINOv3ViTConfig(hidden_size=128, num_attention_heads=4, patch_size=16)
    hf = DINOv3ViTRopePositionEmbedding(cfg).eval()
    cos, sin = hf(torch.zeros(1, 3, 48, 80))
    ours_sin, ours_cos = RopePositionEmbedding(32).eval()((3, 5))
    assert (ours_sin - sin).abs().max() < 1e-6 and (ours_cos - cos).abs().max() < 1e-6


def test_rotation_is_rotate_half_and_preserves_norms():
    x = torch.randn(2, 3, 15, 32)
    sin, cos = RopePositionEmbedding(32)((3, 5))
    y = rope_apply(x, sin, cos)
    # each pair (i, i + D/2) is rotated by its angle: norms of the pairs are kept
    pair = lambda t: t[..., :16] ** 2 + t[..., 16:] ** 2  # noqa: E731
    assert torch.allclose(pair(x), pair(y), atol=1e-5)
    assert torch.allclose(y, x * cos + rotate_half(x) * sin)
    # relative: q.k after rotation depends only on the offset along an axis (same row, shifted columns)
    q, k = torch.randn(32), torch.randn(32)
    dots = [float(rope_apply(q, sin[c], cos[c]) @ rope_apply(k, sin[c + 1], cos[c + 1])) for c in (5, 6, 7)]
    assert max(dots) - min(dots) < 1e-4


def test_train_time_augmentations_only_in_training():
    rope = RopePositionEmbedding(32, shift_coords=0.5, jitter_coords=2.0, rescale_coords=2.0)
    base = RopePositionEmbedding(32)
    rope.eval()
    assert torch.equal(rope.coords((4, 6)), base.coords((4, 6)))
    rope.train()
    torch.manual_seed(0)
    c1, c2 = rope.coords((4, 6)), rope.coords((4, 6))
    assert not torch.equal(c1, c2) and not torch.equal(c1, base.coords((4, 6)))
    only_rescale = RopePositionEmbedding(32, rescale_coords=2.0).train()
    ratio = only_rescale.coords((4, 6)) / base.coords((4, 6))
    assert torch.allclose(ratio, ratio[0, 0].expand_as(ratio)) and 0.5 <= float(ratio[0, 0]) <= 2.0
    with pytest.raises(UserError, match="jitter_coords must be a number >= 1"):
        RopePositionEmbedding(32, jitter_coords=0.5)
    with pytest.raises(UserError, match="divisible by 4"):
        RopePositionEmbedding(30)


def test_bf16_periods_are_dinov3s_stored_values():
    p32 = RopePositionEmbedding(64).periods
    p16 = RopePositionEmbedding(64, periods_dtype="bf16").periods
    stored = 100 ** (2 * torch.arange(16, dtype=torch.bfloat16) / 32)  # how DINOv3 computes its buffer
    assert p16.dtype == torch.float32 and torch.equal(p16, stored.float())
    assert 0 < float(((p16 - p32).abs() / p32).max()) < 4e-3  # bf16 rounding, not a different formula


def test_prefix_and_trailing_tokens_are_not_rotated():
    attn = Attention(32, num_heads=2)
    x = torch.randn(1, 5 + 6 + 2, 32)  # [prefix | 2x3 patches | 2 appended tokens]
    rope = RopePositionEmbedding(16)((2, 3))
    q0, k0, _ = attn.qkv_heads(x)
    q, k, _ = attn.qkv_heads(x, rope, num_prefix_tokens=5)
    for a, b in ((q0, q), (k0, k)):
        assert torch.equal(a[:, :, :5], b[:, :, :5]) and torch.equal(a[:, :, 11:], b[:, :, 11:])
        assert torch.allclose(b[:, :, 5:11], rope_apply(a[:, :, 5:11], *rope))
    with pytest.raises(UserError, match="num_prefix_tokens must count"):
        attn.qkv_heads(x, rope, num_prefix_tokens=9)


def test_rope_model_any_size_skipat_and_test_time_registers():
    from dense_adapters.analysis.test_time_registers import add_test_time_registers

    vit = RegViT(**ROPE_TINY, skip_layers=(2,)).eval()
    assert vit.pos_embed is None and "pos_embed" not in vit.state_dict()
    for hw in ((64, 64), (48, 112), (80, 32)):  # no table to interpolate: any size and aspect
        maps = vit.forward_intermediates(torch.randn(1, 3, *hw), indices=[1, 2])
        assert maps[1].shape == (1, 64, hw[0] // 16, hw[1] // 16)
    # the SkipAt block trains (Phi gets gradients) on a RoPE model
    vit.train()
    vit(torch.randn(2, 3, 48, 64)).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in vit.blocks[2].skip_fn.parameters())
    # test-time registers: one more prefix token, RoPE still only on the patches
    vit.eval()
    x = torch.randn(1, 3, 48, 64)
    with torch.no_grad():
        before = vit.forward_intermediates(x)[0]
        add_test_time_registers(vit, {0: [3]})
        assert vit.num_prefix_tokens == 6 and vit.blocks[0].num_prefix_tokens == 6
        after, prefix = vit.forward_intermediates(x, return_prefix_tokens=True)
    assert after[0].shape == before.shape and prefix[0].shape == (1, 6, 64) and torch.isfinite(after[0]).all()
