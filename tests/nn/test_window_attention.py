"""N-D window machinery (partition, relative index, shift/padding mask) against definitions written per token."""
import itertools

import pytest
import torch

from dense_adapters.errors import UserError
from dense_adapters.nn.window_attention import (WindowAttention, relative_position_index, window_attn_mask,
                                                window_partition, window_reverse)


def test_partition_roundtrip_3d():
    x = torch.randn(2, 4, 6, 9, 5)  # [B, T, H, W, C]
    w = window_partition(x, (2, 3, 3))
    assert w.shape == (2 * 2 * 2 * 3, 18, 5)
    # window 1 of clip 0 is t 0:2, h 0:3, w 3:6 (row-major over the grid, last axis fastest)
    assert torch.equal(w[1], x[0, 0:2, 0:3, 3:6].reshape(18, 5))
    assert torch.equal(window_reverse(w, (2, 3, 3), (4, 6, 9)), x)


def test_relative_position_index_3d_matches_definition():
    win = (2, 3, 2)
    idx = relative_position_index(win, ndim=3)
    pos = list(itertools.product(*(range(k) for k in win)))
    for i, a in enumerate(pos):
        for j, b in enumerate(pos):
            d = [p - q + k - 1 for p, q, k in zip(a, b, win)]
            assert idx[i, j] == (d[0] * (2 * win[1] - 1) + d[1]) * (2 * win[2] - 1) + d[2]
    assert idx.max() == (2 * 2 - 1) * (2 * 3 - 1) * (2 * 2 - 1) - 1


@pytest.mark.parametrize("shift", [(0, 0, 0), (1, 2, 0), (1, 2, 2)])
def test_mask_3d_matches_definition(shift):
    size, win = (3, 5, 4), (2, 4, 4)
    padded = tuple(-(-s // k) * k for s, k in zip(size, win))  # (4, 8, 4)
    mask = window_attn_mask(size, padded, win, shift, torch.device("cpu"))
    assert mask.shape == (2 * 2 * 1, 32, 32)
    # label each padded position by its source coordinates after the roll, then check every pair of each window
    grid = torch.stack(torch.meshgrid(*(torch.arange(p) for p in padded), indexing="ij"), -1)  # [*P, 3]
    src = (grid + torch.tensor(shift)) % torch.tensor(padded)  # where the rolled token came from
    wins = window_partition(grid[None].float(), win)[..., :].long()  # [nW, N, 3] rolled-grid coordinates

    def region(p, P, k, s):
        return 0 if not s else (0 if p < P - k else 1 if p < P - s else 2)

    for n in range(wins.shape[0]):
        for i in range(32):
            for j in range(32):
                qi, kj = wins[n, i].tolist(), wins[n, j].tolist()
                s_key = src[tuple(kj)].tolist()
                valid = all(c < s for c, s in zip(s_key, size))
                same = all(region(a, P, k, s) == region(b, P, k, s)
                           for a, b, P, k, s in zip(qi, kj, padded, win, shift))
                assert mask[n, i, j] == (0.0 if valid and same else -100.0), (n, i, j)


def test_mask_is_none_without_shift_or_padding():
    assert window_attn_mask((4, 8), (4, 8), 4, (0, 0), torch.device("cpu")) is None


def test_window_attention_3d_shapes_and_errors():
    att = WindowAttention(8, num_heads=2, win_size=(2, 3, 3))
    assert att.relative_position_bias_table.shape == (3 * 5 * 5, 2)
    out, p = att(torch.randn(4, 18, 8), return_attn=True)
    assert out.shape == (4, 18, 8) and p.shape == (4, 2, 18, 18)
    torch.testing.assert_close(p.sum(-1), torch.ones(4, 2, 18))
    with pytest.raises(UserError, match="18 tokens"):
        WindowAttention(8, num_heads=2, win_size=4)(torch.randn(1, 18, 8))
    with pytest.raises(UserError, match="positive"):
        WindowAttention(8, num_heads=2, win_size=(0, 4))
