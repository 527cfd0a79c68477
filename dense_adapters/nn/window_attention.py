"""Window self-attention over N-D grids (images: (H, W); videos: (T, H, W)) with a relative position bias.

The machinery is written once for any number of grid axes and used by Uformer (2-D windows) and the video
restorer (3-D windows):

- :func:`window_partition` / :func:`window_reverse`: ``[B, *S, C]`` (each side a window multiple) <->
  ``[B * nW, prod(window), C]``, windows in row-major order over the grid, tokens row-major inside a window.
- :func:`relative_position_index`: the Swin/Uformer index into a ``prod(2w - 1)``-row bias table.
- :func:`window_attn_mask`: the additive mask (0 / -100) for padded keys and, with a cyclic shift, for keys from
  another region of the rolled grid (Swin's SW-MSA mask), per axis.
- :func:`grid_to_windows` / :func:`windows_to_grid`: tokens in grid order <-> padded, shifted windows.
- :class:`WindowAttention`: :class:`~dense_adapters.nn.attention.Attention` (same ``qkv``/``proj`` parameters)
  whose logits get the relative position bias and the mask added before the softmax.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from torch import Tensor, nn

from ..errors import UserError
from .attention import Attention

Window = Union[int, Sequence[int]]


def as_window(window: Window, ndim: int = 2) -> tuple[int, ...]:
    """An int ``w`` -> ``(w,) * ndim``; a sequence -> a tuple (its length is the number of grid axes)."""
    w = (int(window),) * ndim if isinstance(window, int) else tuple(int(v) for v in window)
    if not w or min(w) < 1:
        raise UserError(f"window sizes must be positive integers, got {window!r}")
    return w


def window_partition(x: Tensor, window: Window) -> Tensor:
    """[B, *S, C] (every side S_i a multiple of window_i) -> [B * nW, prod(window), C], windows in row-major
    order over the grid."""
    B, *S, C = x.shape
    w = as_window(window, len(S))
    n = len(S)
    shape = [B]
    for s, k in zip(S, w):
        shape += [s // k, k]
    x = x.view(*shape, C)
    perm = [0] + [1 + 2 * i for i in range(n)] + [2 + 2 * i for i in range(n)] + [1 + 2 * n]
    return x.permute(*perm).reshape(-1, math.prod(w), C)


def window_reverse(windows: Tensor, window: Window, size: Sequence[int]) -> Tensor:
    """[B * nW, prod(window), C] -> [B, *size, C] for a padded grid ``size`` (the inverse of partition)."""
    n = len(size)
    w = as_window(window, n)
    C = windows.shape[-1]
    counts = [s // k for s, k in zip(size, w)]
    x = windows.view(-1, *counts, *w, C)
    perm = [0]
    for i in range(n):
        perm += [1 + i, 1 + n + i]
    return x.permute(*perm, 1 + 2 * n).reshape(-1, *size, C)


def relative_position_index(window: Window, ndim: int = 2) -> Tensor:
    """[N, N] (N = prod(window)) index into a ``prod(2 w_i - 1)``-row bias table, as Swin/Uformer/Video Swin:
    the offset (query - key) along each axis, shifted to 0..2w-2, in mixed radix (first axis most significant)."""
    w = as_window(window, ndim)
    coords = torch.stack(torch.meshgrid(*(torch.arange(k) for k in w), indexing="ij")).flatten(1)  # [n, N]
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + torch.tensor(w) - 1  # [N, N, n]
    index = torch.zeros(rel.shape[:2], dtype=torch.long)
    for i, k in enumerate(w):
        index = index * (2 * k - 1) + rel[..., i]
    return index


def window_attn_mask(size: Sequence[int], padded: Sequence[int], window: Window, shift: Sequence[int],
                     device: torch.device) -> Optional[Tensor]:
    """Additive mask [nW, N, N] (0 or -100) for a grid ``size`` zero-padded to ``padded`` and rolled by
    ``-shift`` (one entry per axis).

    Keys that are padding are masked; along a shifted axis, keys from another region of the rolled grid are masked
    too (Swin's SW-MSA mask, per axis). None when neither applies.
    """
    n = len(size)
    w, shift = as_window(window, n), tuple(int(s) for s in shift)
    if not any(shift) and tuple(size) == tuple(padded):
        return None
    label = torch.zeros(1, *padded, 1, device=device)
    for axis, (k, s) in enumerate(zip(w, shift)):
        if not s:
            continue
        region = torch.zeros(padded[axis], device=device)
        region[-k:-s], region[-s:] = 1, 2  # 0: [0, P - k), 1: [P - k, P - s), 2: [P - s, P)
        view = [1] * (n + 2)
        view[axis + 1] = -1
        label = label * 3 + region.view(view)
    valid = torch.zeros(1, *padded, 1, device=device)
    valid[(slice(None), *(slice(0, s) for s in size))] = 1
    if any(shift):
        valid = torch.roll(valid, tuple(-s for s in shift), dims=tuple(range(1, n + 1)))
    lab, val = window_partition(label, w)[..., 0], window_partition(valid, w)[..., 0]  # [nW, N]
    bad = (lab[:, :, None] != lab[:, None, :]) | (val[:, None, :] == 0)  # [nW, N(query), N(key)]
    return torch.zeros(bad.shape, device=device).masked_fill(bad, -100.0)


class WindowAttention(Attention):
    """:class:`Attention` inside windows with a learned relative position bias added to the logits.

    Parameters: ``qkv``, ``proj`` (from :class:`Attention`) and ``relative_position_bias_table``
    [prod(2 w_i - 1), heads]; the index is a non-persistent buffer. The explicit softmax path runs (windows are
    short, e.g. 64 or 256 tokens) so FLOP counters see every matmul and the probabilities can be returned.

    Args:
        win_size: an int (a square 2-D window, Uformer) or one size per grid axis (e.g. (T, H, W) windows).
    """

    def __init__(self, dim: int, num_heads: int, win_size: Window, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0) -> None:
        super().__init__(dim, num_heads=num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=proj_drop,
                         fused=False)
        self.win_size = win_size
        self.window = as_window(win_size)
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros(math.prod(2 * k - 1 for k in self.window), num_heads))
        self.register_buffer("relative_position_index", relative_position_index(self.window), persistent=False)
        trunc_normal_(self.relative_position_bias_table, std=0.02)

    def position_bias(self) -> Tensor:
        """The relative position bias [heads, N, N] of one window."""
        N = math.prod(self.window)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(N, N, -1).permute(2, 0, 1)

    def forward(self, x: Tensor, mask: Optional[Tensor] = None,
                return_attn: bool = False) -> Union[Tensor, tuple[Tensor, Tensor]]:
        """x: [B*nW, N, C] windows of B grids; mask: [nW, N, N] additive -> [B*nW, N, C] (and the attention
        probabilities [B*nW, heads, N, N] with ``return_attn``)."""
        Bw, N, C = x.shape
        if N != math.prod(self.window):
            raise UserError(f"WindowAttention with window {self.window} got windows of {N} tokens")
        q, k, v = self.qkv_heads(x)  # [B*nW, h, N, d] each
        attn = (q * self.scale) @ k.transpose(-2, -1) + self.position_bias()  # [B*nW, h, N, N]
        if mask is not None:
            nW = mask.shape[0]
            attn = (attn.view(Bw // nW, nW, self.num_heads, N, N) + mask[None, :, None]).view(Bw, -1, N, N)
        attn = attn.softmax(dim=-1)
        x = (self.attn_drop(attn) @ v).transpose(1, 2).reshape(Bw, N, C)
        x = self.proj_drop(self.proj(x))
        return (x, attn) if return_attn else x


def grid_to_windows(x: Tensor, size: Sequence[int], window: Window,
                    shift: Sequence[int]) -> tuple[Tensor, tuple[int, ...]]:
    """Tokens [B, prod(size), C] in row-major grid order -> (windows [B * nW, prod(window), C], padded size):
    the grid is zero-padded at the end of each axis to a window multiple, then rolled by ``-shift``."""
    B, _, C = x.shape
    n = len(size)
    w = as_window(window, n)
    padded = tuple(math.ceil(s / k) * k for s, k in zip(size, w))
    pad = []
    for s, p in reversed(list(zip(size, padded))):
        pad += [0, p - s]
    x = F.pad(x.view(B, *size, C), [0, 0] + pad)  # [B, *padded, C]
    if any(shift):
        x = torch.roll(x, tuple(-int(s) for s in shift), dims=tuple(range(1, n + 1)))
    return window_partition(x, w), padded


def windows_to_grid(windows: Tensor, size: Sequence[int], padded: Sequence[int], window: Window,
                    shift: Sequence[int]) -> Tensor:
    """The inverse of :func:`grid_to_windows`: merge, roll back by ``shift``, crop -> [B, prod(size), C]."""
    n = len(size)
    x = window_reverse(windows, as_window(window, n), padded)
    if any(shift):
        x = torch.roll(x, tuple(int(s) for s in shift), dims=tuple(range(1, n + 1)))
    x = x[(slice(None), *(slice(0, s) for s in size))]
    return x.reshape(x.shape[0], math.prod(size), x.shape[-1])
