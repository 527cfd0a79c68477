"""Uformer core: window machinery against a per-token reference, shapes, SkipAt structure, FLOPs, gradients."""
import json
import os

import pytest
import torch
import torch.nn.functional as F

from dense_adapters.nn.attention import Attention
from dense_adapters.nn.skip_attention import SkipAttention
from dense_adapters.nn.uformer import (LeWinBlock, Uformer, create_uformer, relative_position_index, window_partition,
                                       window_reverse)


def tiny(**kw) -> Uformer:
    torch.manual_seed(0)
    return Uformer(**{**dict(embed_dim=8, depths=(1, 1, 1, 1, 1), win_size=4), **kw})


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_relative_position_index_matches_definition():
    ws = 3
    idx = relative_position_index(ws)
    pos = [(y, x) for y in range(ws) for x in range(ws)]
    for i, (yi, xi) in enumerate(pos):
        for j, (yj, xj) in enumerate(pos):
            assert idx[i, j] == (yi - yj + ws - 1) * (2 * ws - 1) + (xi - xj + ws - 1)


def test_window_partition_roundtrip_non_square():
    x = torch.randn(2, 8, 12, 5)  # [B, H, W, C]
    w = window_partition(x, 4)
    assert w.shape == (2 * 2 * 3, 16, 5)
    assert torch.equal(w[1], x[0, 0:4, 4:8].reshape(16, 5))  # second window of the first row
    assert torch.equal(window_reverse(w, 4, (8, 12)), x)


def reference_window_attention(blk: LeWinBlock, x: torch.Tensor, hw: tuple, shift: int) -> torch.Tensor:
    """Per-query attention written from the definition: a query at original (i, j) attends to the valid tokens
    that fall in the same window of the grid rolled by -shift and, with a shift, in the same Swin region."""
    H, W = hw
    ws, att = blk.win_size, blk.attn
    Hp, Wp = -(-H // ws) * ws, -(-W // ws) * ws
    B, N, C = x.shape
    h = att.num_heads
    q, k, v = att.qkv(x).reshape(B, N, 3, h, C // h).permute(2, 0, 3, 1, 4)  # [B, h, N, d]

    def rolled(i, j):
        return (i - shift) % Hp, (j - shift) % Wp

    def region(p, size):
        return 0 if not shift else (0 if p < size - ws else 1 if p < size - shift else 2)

    out = torch.zeros(B, h, N, C // h)
    table = att.relative_position_bias_table
    for i in range(H):
        for j in range(W):
            ri, rj = rolled(i, j)
            keys, bias = [], []
            for a in range(H):
                for b in range(W):
                    ra, rb = rolled(a, b)
                    if (ra // ws, rb // ws) != (ri // ws, rj // ws):
                        continue
                    if (region(ra, Hp), region(rb, Wp)) != (region(ri, Hp), region(rj, Wp)):
                        continue
                    keys.append(a * W + b)
                    dy, dx = ri % ws - ra % ws, rj % ws - rb % ws
                    bias.append(table[(dy + ws - 1) * (2 * ws - 1) + dx + ws - 1])
            n = i * W + j
            logits = (q[:, :, n : n + 1] * att.scale) @ k[:, :, keys].transpose(-2, -1)  # [B, h, 1, K]
            logits = logits + torch.stack(bias, 0).T[None, :, None]
            out[:, :, n] = (logits.softmax(-1) @ v[:, :, keys])[:, :, 0]
    return att.proj(out.transpose(1, 2).reshape(B, N, C))


@pytest.mark.parametrize("shift", [False, True])
def test_window_attention_with_padding_and_shift_matches_reference(shift):
    torch.manual_seed(0)
    hw = (11, 13)  # not window multiples: padded to 12 x 16 inside the block
    blk = LeWinBlock(dim=8, num_heads=2, win_size=4, shift=shift).eval()
    torch.nn.init.normal_(blk.attn.relative_position_bias_table, std=0.5)
    x = torch.randn(2, hw[0] * hw[1], 8)
    with torch.no_grad():
        ours = blk.window_attention(x, hw)
        ref = reference_window_attention(blk, x, hw, blk.shift_size)
    assert blk.shift_size == (2 if shift else 0)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("skip_mode", [None, "parametric", "identity"])
@pytest.mark.parametrize("size", [(13, 22), (9, 9), (32, 17)])
def test_odd_sizes_keep_shape(skip_mode, size):
    m = tiny(skip_mode=skip_mode).eval()
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        y = m(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_preset_t_odd_size():
    m = create_uformer("T").eval()
    with torch.no_grad():
        assert m(torch.rand(1, 3, 27, 45)).shape == (1, 3, 27, 45)


def test_presets_match_uformer_paper_parameter_counts():
    # Uformer paper, Table 1: Uformer-S 20.63M (counted without modulators), Uformer-B 50.88M (with modulators)
    with torch.device("meta"):  # shapes only: no memory, no init time
        s, b = create_uformer("S", modulator=False), create_uformer("B")
    assert abs(n_params(s) / 1e6 - 20.63) < 0.005
    assert abs(n_params(b) / 1e6 - 50.88) < 0.005
    assert create_uformer("T").embed_dim == 16


def test_skipat_decoder_has_no_attention_parameters():
    plain, skip = tiny(), tiny(skip_mode="parametric")
    for dec in skip.decoders:
        for blk in dec.blocks:
            assert not hasattr(blk, "attn") and not hasattr(blk, "norm1") and not hasattr(blk, "modulator")
            assert isinstance(blk.skip_fn, SkipAttention)
    names = [n for n, _ in skip.decoders.named_parameters()]
    assert not any(k in n for n in names for k in ("qkv", "proj.", "relative_position", "modulator"))
    assert any("qkv" in n for n, _ in plain.decoders.named_parameters())
    assert any("qkv" in n for n, _ in skip.encoders.named_parameters())  # the encoder keeps its attention


def test_skipat_has_fewer_flops():
    from mmengine.analysis import FlopAnalyzer

    def flops(m):
        fa = FlopAnalyzer(m.eval(), torch.rand(1, 3, 32, 48))
        fa.unsupported_ops_warnings(False)
        fa.uncalled_modules_warnings(False)
        return fa.total(), fa.by_module()

    (f_plain, by_plain), (f_skip, by_skip) = flops(tiny()), flops(tiny(skip_mode="parametric"))
    assert f_skip < f_plain
    assert by_skip["encoders"] == by_plain["encoders"]  # the saving is all in the decoder
    assert by_skip["decoders"] < by_plain["decoders"]


def test_skipat_decoder_reuses_the_encoder_attention_output():
    m = tiny(skip_mode="identity").eval()
    seen = {}
    m.encoders[0].blocks[0].register_forward_hook(lambda mod, i, o: seen.__setitem__("enc", o[1]))
    dec_blk = m.decoders[-1].blocks[0]  # the full-resolution decoder level pairs with encoder level 0
    dec_blk.register_forward_hook(lambda mod, i, o: seen.__setitem__("dec", o[1]))
    with torch.no_grad():
        m(torch.rand(1, 3, 16, 24))
    torch.testing.assert_close(seen["dec"], dec_blk.lift(seen["enc"]))


@pytest.mark.parametrize("skip_mode", [None, "parametric"])
def test_every_parameter_gets_a_gradient(skip_mode):
    m = tiny(skip_mode=skip_mode, drop_path_rate=0.0)
    x = torch.rand(2, 3, 32, 40)  # every level's grid exceeds the window: shifted blocks are exercised
    (m(x) - x.flip(-1)).square().mean().backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing


def test_errors():
    with pytest.raises(ValueError, match="2L\\+1"):
        Uformer(depths=(2, 2))
    with pytest.raises(ValueError, match="skip_mode"):
        Uformer(skip_mode="bogus")
    with pytest.raises(ValueError, match="preset"):
        create_uformer("XL")
    blk = LeWinBlock(8, 2, 4, skip="parametric", skip_dim=4)
    with pytest.raises(ValueError, match="reuse"):
        blk(torch.randn(1, 16, 8), (4, 4))
    with pytest.raises(ValueError, match="tokens"):
        blk(torch.randn(1, 15, 8), (4, 4), torch.randn(1, 15, 4))
    with pytest.raises(ValueError, match="\\[B, C, H, W\\]"):
        tiny()(torch.rand(3, 16, 16))


DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


@pytest.mark.parametrize("skip_mode", [None, "parametric", "identity"])
def test_state_dict_and_outputs_unchanged_by_the_window_attention_refactor(skip_mode):
    """Keys, shapes and order of create_uformer('T') and its output on a fixed input equal those recorded before
    WindowAttention was rebuilt on Attention (tests/nn/data, written by the pre-refactor code): the authors'
    checkpoint converters target these names."""
    with open(os.path.join(DATA, "uformer_t_state_dict_keys.json")) as f:
        expected = json.load(f)[str(skip_mode)]
    torch.manual_seed(0)
    m = create_uformer("T", skip_mode=skip_mode).eval()
    assert [[k, list(v.shape)] for k, v in m.state_dict().items()] == expected
    x = torch.rand(1, 3, 24, 40, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = m(x)
    ref = torch.load(os.path.join(DATA, f"uformer_t_{skip_mode}_out.pt"), weights_only=True)
    torch.testing.assert_close(y, ref, atol=1e-6, rtol=1e-6)


def test_window_attention_is_the_vit_attention_with_a_bias():
    blk = LeWinBlock(dim=8, num_heads=2, win_size=4)
    assert isinstance(blk.attn, Attention)
    assert sorted(n for n, _ in blk.attn.named_parameters()) == [
        "proj.bias", "proj.weight", "qkv.bias", "qkv.weight", "relative_position_bias_table"]
    # with a zero bias table and no mask, window attention is plain Attention on each window
    torch.nn.init.zeros_(blk.attn.relative_position_bias_table)
    w = torch.randn(3, 16, 8)
    q, k, v = blk.attn.qkv(w).view(3, 16, 3, 2, 4).permute(2, 0, 3, 1, 4)
    ref = blk.attn.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(3, 16, 8))
    torch.testing.assert_close(blk.attn(w), ref)
