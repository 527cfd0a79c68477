"""Video restorer core: 3-D window attention against a per-token reference, SkipAt reuse (identity: the encoder's
probabilities, exactly; parametric: Phi of its output), shapes, FLOPs, gradients, whole-sequence windows."""
import itertools

import pytest
import torch

from dense_adapters.errors import UserError
from dense_adapters.nn.skip_attention import SkipAttention
from dense_adapters.nn.video_uformer import (SpatioTemporalBlock, VideoUformer, create_video_uformer,
                                             restore_in_windows, window_starts)


def tiny(**kw) -> VideoUformer:
    torch.manual_seed(0)
    return VideoUformer(**{**dict(embed_dim=8, depths=(1, 1, 1), win_size=(2, 4, 4)), **kw})


def reference_attention(blk: SpatioTemporalBlock, x: torch.Tensor, thw: tuple) -> torch.Tensor:
    """Per-query attention written from the definition: a query at (t, i, j) attends to the real tokens that fall
    in its window of the grid rolled by -shift and, along each shifted axis, in its Swin region; the bias is
    looked up by the offsets inside the rolled window."""
    shift, win, att = blk.shift_for(thw), blk.window, blk.attn
    padded = [-(-n // k) * k for n, k in zip(thw, win)]
    B, N, C = x.shape
    h = att.num_heads
    q, k, v = att.qkv(x).reshape(B, N, 3, h, C // h).permute(2, 0, 3, 1, 4)  # [B, h, N, d]
    pos = list(itertools.product(*(range(n) for n in thw)))
    rolled = [tuple((p - s) % P for p, s, P in zip(c, shift, padded)) for c in pos]

    def region(r, P, w, s):
        return 0 if not s else (0 if r < P - w else 1 if r < P - s else 2)

    table, out = att.relative_position_bias_table, torch.zeros(B, h, N, C // h)
    for n, rq in enumerate(rolled):
        keys, bias = [], []
        for m, rk in enumerate(rolled):
            if any(a // w != b // w for a, b, w in zip(rq, rk, win)):
                continue
            if any(region(a, P, w, s) != region(b, P, w, s) for a, b, P, w, s in zip(rq, rk, padded, win, shift)):
                continue
            keys.append(m)
            d = [a % w - b % w + w - 1 for a, b, w in zip(rq, rk, win)]
            bias.append(table[(d[0] * (2 * win[1] - 1) + d[1]) * (2 * win[2] - 1) + d[2]])
        logits = (q[:, :, n: n + 1] * att.scale) @ k[:, :, keys].transpose(-2, -1) + torch.stack(bias).T[None, :, None]
        out[:, :, n] = (logits.softmax(-1) @ v[:, :, keys])[:, :, 0]
    return att.proj(out.transpose(1, 2).reshape(B, N, C))


@pytest.mark.parametrize("shift", [False, True])
def test_spatio_temporal_attention_with_padding_matches_reference(shift):
    torch.manual_seed(0)
    thw = (5, 7, 6)  # odd T/H/W, none a window multiple: padded to 6 x 8 x 8 inside the block
    blk = SpatioTemporalBlock(8, num_heads=2, win_size=(3, 4, 4), shift=shift).eval()
    torch.nn.init.normal_(blk.attn.relative_position_bias_table, std=0.5)
    x = torch.randn(2, 5 * 7 * 6, 8)
    with torch.no_grad():
        ours = blk.attention(x, thw).out
        ref = reference_attention(blk, x, thw)
    assert blk.shift_for(thw) == ((1, 2, 2) if shift else (0, 0, 0))
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-4)


def test_shift_only_along_axes_longer_than_the_window():
    blk = SpatioTemporalBlock(8, num_heads=2, win_size=(4, 4, 4), shift=True)
    assert blk.shift_for((3, 9, 4)) == (0, 2, 0)


@pytest.mark.parametrize("skip_mode", [None, "identity", "parametric"])
@pytest.mark.parametrize("size", [(3, 13, 10), (1, 9, 9), (5, 16, 17)])
def test_odd_sizes_keep_shape(skip_mode, size):
    m = tiny(skip_mode=skip_mode).eval()
    x = torch.rand(2, size[0], 3, *size[1:])
    with torch.no_grad():
        y = m(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_identity_skipat_decoder_owns_no_attention_and_reuses_the_encoder_probabilities_exactly():
    m = tiny(skip_mode="identity", depths=(2, 1, 2)).eval()  # two blocks per level: shifted and not
    for blk in m.decoders[0].blocks:
        torch.nn.init.normal_(blk.ls1.gamma)  # any per-channel gain
    names = [n for n, _ in m.decoders.named_parameters()]
    assert not any(k in n for n in names for k in ("qkv", "proj.", "relative_position", "attn"))
    assert all(not hasattr(b, "attn") for b in m.decoders[0].blocks)
    owned = {n.split(".")[0] for n, _ in m.decoders[0].blocks[0].named_parameters()}
    assert owned == {"pos_embed", "norm1", "ls1", "norm2", "mlp"}  # a gain, no projection
    assert any("qkv" in n for n, _ in m.encoders.named_parameters())
    seen = {}
    for i in range(2):
        m.encoders[0].blocks[i].register_forward_hook(lambda mod, a, o, i=i: seen.__setitem__(("enc", i), o[1]))
        m.decoders[0].blocks[i].register_forward_hook(lambda mod, a, o, i=i: seen.__setitem__(("dec", i), (a, o)))
    with torch.no_grad():
        m(torch.rand(1, 3, 3, 12, 20))
    for i in range(2):
        enc = seen[("enc", i)]
        (x, thw, rec, _), (_, dec) = seen[("dec", i)]
        assert dec.probs is enc.probs and dec.shift == enc.shift  # the same tensor, not a copy
        blk = m.decoders[0].blocks[i]
        # recompute from the definition: x + DPE(x), normed; head j of the probabilities mixes channel group j
        y = blk.norm1(x + blk.pos_embed(x.transpose(1, 2).reshape(1, -1, *thw)).flatten(2).transpose(1, 2))
        T, H, W = thw
        grid = torch.nn.functional.pad(y.view(1, T, H, W, -1), (0, 0, 0, -W % 4, 0, -H % 4, 0, -T % 2))
        grid = torch.roll(grid, tuple(-s for s in enc.shift), dims=(1, 2, 3))
        Tp, Hp, Wp = grid.shape[1:4]
        win = grid.view(1, Tp // 2, 2, Hp // 4, 4, Wp // 4, 4, -1).permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(-1, 32, 16)
        h = enc.probs.shape[1]
        mixed = (enc.probs @ win.view(-1, 32, h, 16 // h).transpose(1, 2)).transpose(1, 2).reshape(-1, 32, 16)
        back = mixed.view(1, Tp // 2, Hp // 4, Wp // 4, 2, 4, 4, 16).permute(0, 1, 4, 2, 5, 3, 6, 7)
        back = torch.roll(back.reshape(1, Tp, Hp, Wp, 16), enc.shift, dims=(1, 2, 3))[:, :T, :H, :W]
        torch.testing.assert_close(dec.out, blk.ls1(back.reshape(1, -1, 16)))


def test_parametric_skipat_decoder_applies_phi_per_frame_to_the_encoder_output():
    m = tiny(skip_mode="parametric").eval()
    blk = m.decoders[-1].blocks[0]  # full resolution, pairs with encoder level 0
    assert isinstance(blk.skip_fn, SkipAttention) and not hasattr(blk, "attn")
    seen = {}
    m.encoders[0].blocks[0].register_forward_hook(lambda mod, a, o: seen.__setitem__("enc", o[1]))
    blk.register_forward_hook(lambda mod, a, o: seen.__setitem__("dec", (a[1], o[1])))
    with torch.no_grad():
        m(torch.rand(1, 3, 3, 8, 12))
    thw, dec = seen["dec"]
    T, H, W = thw
    frames = seen["enc"].out.view(T, H * W, -1)  # B = 1: frame t is row t
    ref = torch.cat([blk.lift(blk.skip_fn(f[None], (H, W))) for f in frames], 1)
    torch.testing.assert_close(dec.out, ref)


@pytest.mark.parametrize("skip_mode", [None, "identity", "parametric"])
def test_every_parameter_gets_a_gradient(skip_mode):
    m = tiny(skip_mode=skip_mode, drop_path_rate=0.0)
    x = torch.rand(1, 3, 3, 16, 16)  # level 0 exceeds the window along every axis: shifted blocks run
    (m(x) - x.flip(-1)).square().mean().backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing


def test_skipat_has_fewer_flops_all_in_the_decoder():
    from mmengine.analysis import FlopAnalyzer

    def flops(m):
        fa = FlopAnalyzer(m.eval(), torch.rand(1, 3, 3, 16, 16))
        fa.unsupported_ops_warnings(False)
        fa.uncalled_modules_warnings(False)
        return fa.by_module()

    plain, ident, param = flops(tiny()), flops(tiny(skip_mode="identity")), flops(tiny(skip_mode="parametric"))
    for skip in (ident, param):
        assert skip[""] < plain[""] and skip["encoders"] == plain["encoders"]
        assert skip["decoders"] < plain["decoders"]


def test_presets_build():
    with torch.device("meta"):
        s, b = create_video_uformer("S"), create_video_uformer("B", skip_mode="identity")
    assert s.embed_dim == 32 and b.embed_dim == 48 and b.skip_mode == "identity"
    assert sum(p.numel() for p in s.parameters()) < sum(p.numel() for p in b.parameters())


def test_window_starts_cover_the_sequence_with_the_overlap():
    assert window_starts(5, 7, 2) == [0]
    assert window_starts(17, 7, 2) == [0, 5, 10]
    for n, size, ov in [(20, 7, 2), (8, 7, 3), (30, 8, 0)]:
        s = window_starts(n, size, ov)
        assert s[0] == 0 and s[-1] + size == n and all(b - a <= size - ov for a, b in zip(s, s[1:]))
    with pytest.raises(UserError, match="overlap"):
        window_starts(20, 7, 7)


def test_restore_in_windows_averages_overlapping_predictions():
    x = torch.rand(1, 11, 3, 10, 14)
    # a per-frame function gives the same result whatever the windows
    torch.testing.assert_close(restore_in_windows(lambda c: c * 2 + 1, x, clip_len=4, overlap=2, tile=8,
                                                  tile_overlap=3), x * 2 + 1)
    # a function that sees its window: every frame is the mean of the window means it took part in
    out = restore_in_windows(lambda c: c.mean(1, keepdim=True).expand_as(c), x[..., :1, :1], clip_len=7, overlap=3)
    w0, w1 = x[:, 0:7, :, :1, :1].mean(1), x[:, 4:11, :, :1, :1].mean(1)
    torch.testing.assert_close(out[:, 5], (w0 + w1) / 2)
    torch.testing.assert_close(out[:, 0], w0)


def test_errors():
    with pytest.raises(UserError, match="2L\\+1"):
        VideoUformer(depths=(2, 2))
    with pytest.raises(UserError, match="skip_mode"):
        VideoUformer(skip_mode="bogus")
    with pytest.raises(UserError, match="preset"):
        create_video_uformer("XL")
    with pytest.raises(UserError, match="\\[B, T, C, H, W\\]"):
        tiny()(torch.rand(1, 3, 16, 16))
    blk = SpatioTemporalBlock(8, num_heads=2, win_size=(2, 4, 4), skip="identity")
    with pytest.raises(UserError, match="reuse"):
        blk(torch.randn(1, 32, 8), (2, 4, 4))
    with pytest.raises(UserError, match="tokens"):
        blk(torch.randn(1, 31, 8), (2, 4, 4))
