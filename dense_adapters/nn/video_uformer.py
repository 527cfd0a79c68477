"""A video denoiser with Skip-Attention: a U-shaped restorer of 3-D convolutions and spatio-temporal window
attention over (T, H, W), trained multi-input multi-output (T noisy frames in, T clean frames out).

SkipAt's video model (Venkataramanan et al. 2023, video denoising on DAVIS) is a U-shaped hybrid of 3-D
convolutions and UniFormer-style spatio-temporal self-attention blocks whose decoder blocks skip self-attention and
reuse the matching encoder block's attention. The authors did not release it; this is our construction from the
paper's description and the image restorer (:mod:`dense_adapters.nn.uformer`), whose pieces it reuses:

- Block (UniFormer-style: dynamic position embedding, attention, feed-forward):
  ``x + DPE(x)`` (depthwise 3x3x3 conv), ``x + 3-D W-MSA(norm1(x))`` (joint attention of the tokens of a
  ``(t, h, w)`` window, relative position bias over the three axes, windows shifted by half on odd blocks, padded
  keys masked), ``x + LeFF(norm2(x))`` (Uformer's LeFF, its depthwise 3x3 run per frame).
- U shape: a 3x3x3 conv in; L encoder levels, each followed by a (1, 4, 4) stride-(1, 2, 2) conv that halves H, W
  and doubles the width (T is kept: the clips are short); a bottleneck; L decoder levels, each after a (1, 2, 2)
  transposed conv, on ``cat[upsampled, encoder output]``; a 3x3x3 conv out; the input is added back. The
  output conv starts 10x smaller than PyTorch's default (bias 0), so the untrained restorer is close to the
  identity map; on the sample this let a 40-iteration training gain ~4.5 dB instead of ~2 dB (plain and SkipAt).
- SkipAt in the decoder (``skip_mode``), every decoder block computes no attention:
  ``'identity'`` (the paper's choice for video): the encoder block's attention **probabilities** are reused
  unchanged: head j of the encoder's probabilities mixes the j-th channel group of ``norm1(x)`` over the same
  windows (same grid, window, shift and mask), times a per-channel gain ``ls1`` (LayerScale, 0.01 at init).
  The block owns no ``qkv``, ``proj`` or bias table.
  ``'parametric'`` (as the image case): the encoder block's attention **output** through SkipAt's Phi
  (:class:`~dense_adapters.nn.skip_attention.SkipAttention`, per frame) and a Linear d -> 2d to the decoder width.

Decoder level k pairs with encoder level L-1-k (same T, H, W: the clip is padded to a multiple of 2**L in H and
W); decoder block i reuses encoder block min(i, depth-1) of that level, with that block's shift.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch
from timm.layers import DropPath, LayerScale
from torch import Tensor, nn

from ..errors import UserError
from .skip_attention import build_skip_fn
from .uformer import LeFF, Uformer, pad_to_multiple
from .window_attention import WindowAttention, as_window, grid_to_windows, window_attn_mask, windows_to_grid

THW = tuple[int, int, int]

# name -> (embed_dim, depths: L encoder levels, bottleneck, L decoder levels); heads 1, 2, 4, ... per level
VIDEO_UFORMER_PRESETS = {
    "S": dict(embed_dim=32, depths=(2, 2, 2, 2, 2, 2, 2)),
    "B": dict(embed_dim=48, depths=(2, 2, 4, 4, 4, 2, 2)),
}
SKIP_MODES = (None, "identity", "parametric")


@dataclass
class AttnRecord:
    """What an attention block hands to the decoder block that reuses it.

    out: the attention output in clip order [B, T*H*W, C]. probs: the softmax probabilities [B*nW, heads, N, N]
    over the block's padded, shifted windows (kept only when asked). shift: the block's (t, h, w) shift.
    """

    out: Tensor
    probs: Optional[Tensor]
    shift: THW


def to_map3d(x: Tensor, thw: THW) -> Tensor:
    """[B, T*H*W, C] -> [B, C, T, H, W]."""
    return x.transpose(1, 2).reshape(x.shape[0], -1, *thw)


def to_tokens3d(x: Tensor) -> tuple[Tensor, THW]:
    """[B, C, T, H, W] -> ([B, T*H*W, C], (T, H, W))."""
    return x.flatten(2).transpose(1, 2), tuple(x.shape[2:])


class SpatioTemporalBlock(nn.Module):
    """UniFormer-style block on a (T, H, W) token grid (see module doc); with ``skip`` a SkipAt decoder block.

    Args:
        win_size: attention window (t, h, w); each axis shifts by half on odd blocks (``shift``) where the grid
            is longer than the window along it.
        dpe: the depthwise 3x3x3 position-embedding conv before attention (UniFormer's DPE).
        skip: None, ``'identity'`` (reuse probabilities) or ``'parametric'`` (Phi of the attention output);
            ``skip_dim`` is the width of the reused attention output (parametric).
        identity_gain: initial value of the identity block's per-channel gain ``ls1`` on the mixed tokens.
    """

    def __init__(self, dim: int, *, num_heads: int, win_size: Sequence[int] = (4, 8, 8), shift: bool = False,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, drop_path: float = 0.0, dpe: bool = True,
                 skip: Optional[str] = None, skip_dim: Optional[int] = None, identity_gain: float = 1e-2) -> None:
        super().__init__()
        if skip not in SKIP_MODES:
            raise UserError(f"unknown skip mode {skip!r}: use None, 'identity' or 'parametric'")
        self.dim, self.skip = dim, skip
        self.window = as_window(win_size, 3)
        self.shift_size = tuple(k // 2 for k in self.window) if shift else (0, 0, 0)
        self.pos_embed = nn.Conv3d(dim, dim, 3, padding=1, groups=dim) if dpe else None
        if skip is None:
            self.norm1 = nn.LayerNorm(dim)
            self.attn = WindowAttention(dim, num_heads, self.window, qkv_bias)
        elif skip == "identity":
            self.norm1 = nn.LayerNorm(dim)  # the tokens that the reused probabilities mix
            # a per-channel gain (no token or channel mixing), small at init as the projected branches are:
            # without it the unprojected mixture of normed tokens starts as a large residual and training stalls
            self.ls1 = LayerScale(dim, init_values=identity_gain)
        else:
            skip_dim = skip_dim or dim
            self.skip_fn = build_skip_fn(skip, skip_dim)
            self.lift = nn.Linear(skip_dim, dim) if skip_dim != dim else nn.Identity()
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = LeFF(dim, int(dim * mlp_ratio))

    def shift_for(self, thw: THW) -> THW:
        """The shift used on a grid ``thw``: none along an axis that fits in one window."""
        return tuple(s if n > k else 0 for s, n, k in zip(self.shift_size, thw, self.window))

    def attention(self, x: Tensor, thw: THW, keep_probs: bool = False) -> AttnRecord:
        """Window attention of normed tokens x [B, T*H*W, C] -> record (output in clip order)."""
        shift = self.shift_for(thw)
        win, padded = grid_to_windows(x, thw, self.window, shift)  # [B*nW, t*h*w, C]
        out, probs = self.attn(win, window_attn_mask(thw, padded, self.window, shift, x.device), return_attn=True)
        return AttnRecord(windows_to_grid(out, thw, padded, self.window, shift), probs if keep_probs else None, shift)

    def reuse_probs(self, x: Tensor, thw: THW, rec: AttnRecord) -> Tensor:
        """SkipAt identity: the encoder's probabilities [B*nW, h, N, N] mix channel group j of x with head j."""
        if rec.probs is None:
            raise UserError("identity SkipAt needs the encoder's attention probabilities: the record has none")
        win, padded = grid_to_windows(x, thw, self.window, rec.shift)  # the encoder block's windows
        Bw, N, C = win.shape
        h = rec.probs.shape[1]
        if rec.probs.shape != (Bw, h, N, N) or C % h:
            raise UserError(f"encoder attention {tuple(rec.probs.shape)} does not fit {Bw} windows of {N} tokens "
                            f"and width {C} (width must be a multiple of the encoder's {h} heads)")
        v = win.view(Bw, N, h, C // h).transpose(1, 2)  # [B*nW, h, N, C/h]
        out = (rec.probs @ v).transpose(1, 2).reshape(Bw, N, C)
        return windows_to_grid(out, thw, padded, self.window, rec.shift)

    def forward(self, x: Tensor, thw: THW, reuse: Optional[AttnRecord] = None,
                keep_probs: bool = False) -> tuple[Tensor, AttnRecord]:
        """x: [B, T*H*W, C] -> (x, this block's attention record); SkipAt blocks need the encoder's ``reuse``."""
        B, L, C = x.shape
        if L != math.prod(thw):
            raise UserError(f"SpatioTemporalBlock got {L} tokens for a {'x'.join(map(str, thw))} grid")
        if self.pos_embed is not None:
            x = x + self.pos_embed(to_map3d(x, thw)).flatten(2).transpose(1, 2)
        if self.skip is None:
            rec = self.attention(self.norm1(x), thw, keep_probs)
        elif reuse is None:
            raise UserError("a SkipAt decoder block needs the encoder's attention: pass reuse=")
        elif self.skip == "identity":
            rec = AttnRecord(self.ls1(self.reuse_probs(self.norm1(x), thw, reuse)), reuse.probs, reuse.shift)
        else:
            T, H, W = thw
            a = self.skip_fn(reuse.out.reshape(B * T, H * W, -1), (H, W))  # Phi per frame
            rec = AttnRecord(self.lift(a.reshape(B, L, -1)), None, reuse.shift)
        x = x + self.drop_path(rec.out)
        T, H, W = thw
        x = x + self.drop_path(self.mlp(self.norm2(x).reshape(B * T, H * W, C), (H, W)).reshape(B, L, C))
        return x, rec


class VideoStage(nn.Module):
    """Blocks at one resolution, shifting on odd blocks; SkipAt block i reuses record ``min(i, len - 1)``."""

    def __init__(self, dim: int, *, depth: int, num_heads: int, drop_path: Sequence[float] = (), shift: bool = True,
                 **block_kw) -> None:
        super().__init__()
        dpr = list(drop_path) or [0.0] * depth
        self.blocks = nn.ModuleList(
            SpatioTemporalBlock(dim, num_heads=num_heads, shift=shift and i % 2 == 1, drop_path=dpr[i], **block_kw)
            for i in range(depth))

    def forward(self, x: Tensor, thw: THW, reuse: Optional[Sequence[AttnRecord]] = None,
                keep_probs: bool = False) -> tuple[Tensor, list[AttnRecord]]:
        recs = []
        for i, blk in enumerate(self.blocks):
            x, r = blk(x, thw, reuse[min(i, len(reuse) - 1)] if reuse else None, keep_probs)
            recs.append(r)
        return x, recs


class VideoUformer(nn.Module):
    """U-shaped spatio-temporal restorer: [B, T, C, H, W] noisy clip in [0, 1] -> restored clip (see module doc).

    Args:
        embed_dim: width C of the first level (S: 32, B: 48).
        depths: 2L + 1 block counts (L encoder levels, bottleneck, L decoder levels).
        num_heads: per stage; default 1, 2, ..., 2**L, ..., 2 (head width C, as Uformer).
        win_size: attention window (t, h, w); default (4, 8, 8): a 7-frame clip is padded to 8 frames inside
            each block (padded keys masked) and attends in two temporal windows, shifted by 2 on odd blocks.
        skip_mode: None (every block attends), ``'identity'`` or ``'parametric'`` (SkipAt decoder).
        pad_mode: how H, W are padded to a multiple of 2**L (output cropped back).
    """

    def __init__(self, *, embed_dim: int = 32, depths: Sequence[int] = (2,) * 7,
                 num_heads: Optional[Sequence[int]] = None, win_size: Sequence[int] = (4, 8, 8),
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, drop_path_rate: float = 0.1, shift: bool = True,
                 dpe: bool = True, skip_mode: Optional[str] = None, in_chans: int = 3,
                 pad_mode: str = "reflect") -> None:
        super().__init__()
        if len(depths) % 2 == 0 or len(depths) < 3:
            raise UserError(f"depths must have 2L+1 entries (L encoder levels, bottleneck, L decoder), got {depths}")
        if skip_mode not in SKIP_MODES:
            raise UserError(f"unknown skip_mode {skip_mode!r}: use None, 'identity' or 'parametric'")
        L = len(depths) // 2
        num_heads = list(num_heads or [2**i for i in range(L + 1)] + [2 ** (L - k) for k in range(L)])
        if len(num_heads) != len(depths):
            raise UserError(f"num_heads {num_heads} must have as many entries as depths {list(depths)}")
        self.num_levels, self.embed_dim, self.skip_mode, self.pad_mode = L, embed_dim, skip_mode, pad_mode
        self.depths, self.window = tuple(depths), as_window(win_size, 3)
        C = embed_dim
        n_enc = sum(depths[:L])
        enc_dpr = [drop_path_rate * i / max(n_enc - 1, 1) for i in range(n_enc)]
        dec_dpr = enc_dpr[::-1] + [drop_path_rate] * max(0, sum(depths[L + 1:]) - len(enc_dpr))
        kw = dict(win_size=self.window, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, shift=shift, dpe=dpe)

        self.input_proj = nn.Sequential(nn.Conv3d(in_chans, C, 3, padding=1), nn.LeakyReLU(inplace=True))
        self.encoders, self.downs = nn.ModuleList(), nn.ModuleList()
        for l in range(L):
            d = C * 2**l
            dp = enc_dpr[sum(depths[:l]): sum(depths[: l + 1])]
            self.encoders.append(VideoStage(d, depth=depths[l], num_heads=num_heads[l], drop_path=dp, **kw))
            self.downs.append(nn.Conv3d(d, 2 * d, (1, 4, 4), stride=(1, 2, 2), padding=(0, 1, 1)))
        self.bottleneck = VideoStage(C * 2**L, depth=depths[L], num_heads=num_heads[L],
                                     drop_path=[drop_path_rate] * depths[L], **kw)
        self.ups, self.decoders = nn.ModuleList(), nn.ModuleList()
        in_dim = C * 2**L
        for k in range(L):
            l = L - 1 - k
            d = C * 2**l
            dp = dec_dpr[sum(depths[L + 1: L + 1 + k]): sum(depths[L + 1: L + 2 + k])]
            self.ups.append(nn.ConvTranspose3d(in_dim, d, (1, 2, 2), stride=(1, 2, 2)))
            self.decoders.append(VideoStage(2 * d, depth=depths[L + 1 + k], num_heads=num_heads[L + 1 + k],
                                            drop_path=dp, skip=skip_mode, skip_dim=d, **kw))
            in_dim = 2 * d
        self.output_proj = nn.Conv3d(2 * C, in_chans, 3, padding=1)
        self.apply(Uformer._init_weights)
        with torch.no_grad():  # start close to the identity map (output ~ input): a 10x smaller output conv
            self.output_proj.weight.mul_(0.1)
            self.output_proj.bias.zero_()

    @property
    def size_multiple(self) -> int:
        """H and W are padded internally to a multiple of this (2**L)."""
        return 2**self.num_levels

    def residual(self, x: Tensor) -> Tensor:
        """Clip [B, T, C, H, W] (any T, H, W) -> predicted residual [B, T, C, H, W]."""
        H, W = x.shape[-2:]
        keep = self.skip_mode == "identity"
        y, thw = to_tokens3d(self.input_proj(pad_to_multiple(x, self.size_multiple, self.pad_mode).transpose(1, 2)))
        skips, recs = [], []
        for enc, down in zip(self.encoders, self.downs):
            y, r = enc(y, thw, keep_probs=keep)
            skips.append(y)
            recs.append(r)
            y, thw = to_tokens3d(down(to_map3d(y, thw)))
        y, _ = self.bottleneck(y, thw)
        for k, (up, dec) in enumerate(zip(self.ups, self.decoders)):
            l = self.num_levels - 1 - k
            y, thw = to_tokens3d(up(to_map3d(y, thw)))
            y, _ = dec(torch.cat([y, skips[l]], dim=-1), thw, recs[l] if self.skip_mode else None)  # [B, THW, 2d]
        return self.output_proj(to_map3d(y, thw)).transpose(1, 2)[..., :H, :W]

    def forward(self, x: Tensor) -> Tensor:
        """Noisy clip [B, T, C, H, W] in [0, 1] -> restored clip (input + residual)."""
        if x.ndim != 5:
            raise UserError(f"VideoUformer expects clips [B, T, C, H, W], got shape {tuple(x.shape)}")
        return x + self.residual(x)


def create_video_uformer(name: str, **overrides) -> VideoUformer:
    """Build a preset of ``VIDEO_UFORMER_PRESETS`` (``'S'``, ``'B'``) with keyword overrides."""
    if name not in VIDEO_UFORMER_PRESETS:
        raise UserError(f"unknown VideoUformer preset {name!r}: use one of {sorted(VIDEO_UFORMER_PRESETS)}")
    return VideoUformer(**{**VIDEO_UFORMER_PRESETS[name], **overrides})


# ------------------------------------------------------------------------------------------------ inference
def window_starts(n: int, size: int, overlap: int) -> list[int]:
    """Starts of windows of ``size`` covering 0..n with at least ``overlap`` in common (the last one ends at n)."""
    if size <= 0 or n <= size:
        return [0]
    if not 0 <= overlap < size:
        raise UserError(f"overlap {overlap} must be in [0, window {size})")
    return list(range(0, n - size, size - overlap)) + [n - size]


@torch.no_grad()
def restore_in_windows(fn: Callable[[Tensor], Tensor], x: Tensor, clip_len: int, overlap: int = 2,
                       tile: int = 0, tile_overlap: int = 32) -> Tensor:
    """Run a clip restorer ``fn`` over a whole sequence x [B, N, C, H, W] in overlapping temporal windows of
    ``clip_len`` frames (and, with ``tile``, spatial tiles) and average the predictions where windows overlap
    (as VRT's and RVRT's test scripts)."""
    B, N, C, H, W = x.shape
    out = torch.zeros_like(x)
    count = x.new_zeros(1, N, 1, H, W)
    th, tw = (tile, tile) if tile else (H, W)
    for t in window_starts(N, clip_len, overlap):
        for i in window_starts(H, th, tile_overlap):
            for j in window_starts(W, tw, tile_overlap):
                sl = (slice(None), slice(t, t + clip_len), slice(None), slice(i, i + th), slice(j, j + tw))
                out[sl] += fn(x[sl])
                count[sl] += 1
    return out / count
