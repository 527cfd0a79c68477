"""Uformer (Wang et al., CVPR 2022): a U-shaped restorer of LeWin blocks, with SkipAt in the decoder.

LeWin block: pre-norm window self-attention (window ``win_size``, shifted by ``win_size // 2`` on odd blocks,
Swin/Uformer relative position bias; :class:`~dense_adapters.nn.window_attention.WindowAttention`, built on the
ViT's :class:`~dense_adapters.nn.attention.Attention`) and LeFF (Linear, GELU, depthwise 3x3, GELU, Linear). Decoder blocks add a
learnable *modulator* (a ``win_size**2 x dim`` embedding) to every window's tokens before attention.

SkipAt (Venkataramanan et al. 2023) variant, ``skip_mode='parametric'|'identity'``: a decoder block owns no
``qkv``/``proj``/``norm1``/modulator and computes no attention. Its attention branch is
``lift(Phi(a))`` where ``a`` [B, H*W, d] is the attention output of the encoder block with the same index at the
same resolution, Phi is :class:`~dense_adapters.nn.skip_attention.SkipAttention` (SkipAt's Uformer function:
Linear, GELU, depthwise 5x5, GELU, Linear, ECA; ``'identity'`` reuses ``a`` unchanged) and ``lift`` is a Linear
d -> 2d, because a decoder level is twice as wide as its encoder level (it works on ``cat[upsampled, skip]``).

How the two ends stay consistent: a block's attention output is returned in *image order* on the block's own
(H, W) grid: inside the block the grid is zero-padded to a window multiple, cyclically shifted, partitioned,
attended, merged, shifted back and cropped to (H, W). Padded keys are masked (-100, as Uformer's masks), so the
crop loses nothing. Encoder level l and decoder level L-1-l see the same (H, W) (the model pads the image to a
multiple of 2**L), so ``a`` lines up token for token with the decoder tokens whatever the window, shift or
padding of either block; Phi's depthwise conv then runs on that full (H, W) grid, across window borders.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from timm.layers import DropPath, trunc_normal_
from torch import Tensor, nn

from ..errors import UserError
from .skip_attention import build_skip_fn
from .window_attention import (WindowAttention, grid_to_windows, relative_position_index,  # noqa: F401
                               window_attn_mask, window_partition, window_reverse, windows_to_grid)

HW = tuple[int, int]

# name -> (embed_dim, depths); heads default to 1, 2, 4, ... per level as Uformer's [1,2,4,8,16,16,8,4,2]
UFORMER_PRESETS = {
    "T": dict(embed_dim=16, depths=(2, 2, 2, 2, 2, 2, 2, 2, 2)),
    "S": dict(embed_dim=32, depths=(2, 2, 2, 2, 2, 2, 2, 2, 2)),
    "B": dict(embed_dim=32, depths=(1, 2, 8, 8, 2, 8, 8, 2, 1)),
}


# ------------------------------------------------------------------------------------------------ layers
class LeFF(nn.Module):
    """Locally-enhanced feed-forward: Linear, GELU, depthwise 3x3 on the (H, W) grid, GELU, Linear."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.act = nn.GELU()
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor, hw: HW) -> Tensor:
        """x: [B, H*W, C] -> [B, H*W, C]."""
        B, N, _ = x.shape
        x = self.act(self.fc1(x)).transpose(1, 2).reshape(B, -1, *hw)  # [B, hidden, H, W]
        x = self.act(self.dwconv(x)).flatten(2).transpose(1, 2)  # [B, H*W, hidden]
        return self.drop(self.fc2(x))


class LeWinBlock(nn.Module):
    """x + W-MSA(norm1(x)) [+ modulator]; x + LeFF(norm2(x)). Or, with ``skip``, a SkipAt block (see module doc).

    Args:
        shift: shift windows by ``win_size // 2`` (disabled at run time where the grid fits one window, unless
            ``fixed_shift``).
        fixed_shift: the shift was decided when the model was built (``Uformer(shift_from_size=...)``): apply it
            at every grid size, as Uformer's own blocks do.
        modulator: add a learned [win_size**2, dim] embedding to each window before attention (decoder blocks).
        skip: None, ``'parametric'`` or ``'identity'``; ``skip_dim`` is the width of the reused attention output.
    """

    def __init__(self, dim: int, num_heads: int, win_size: int = 8, shift: bool = False, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, drop: float = 0.0, attn_drop: float = 0.0, drop_path: float = 0.0,
                 modulator: bool = False, skip: Optional[str] = None, skip_dim: Optional[int] = None,
                 fixed_shift: bool = False) -> None:
        super().__init__()
        self.dim, self.win_size, self.skip = dim, win_size, skip
        self.shift_size = win_size // 2 if shift else 0
        self.fixed_shift = fixed_shift
        if skip is None:
            self.norm1 = nn.LayerNorm(dim)
            self.attn = WindowAttention(dim, num_heads, win_size, qkv_bias, attn_drop, drop)
            self.modulator = nn.Embedding(win_size * win_size, dim) if modulator else None
        else:
            skip_dim = skip_dim or dim
            self.skip_fn = build_skip_fn(skip, skip_dim)
            self.lift = nn.Linear(skip_dim, dim) if skip_dim != dim else nn.Identity()
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = LeFF(dim, int(dim * mlp_ratio), drop)

    def window_attention(self, x: Tensor, hw: HW) -> Tensor:
        """Attention branch in image order: x [B, H*W, C] (already normed) -> [B, H*W, C]."""
        ws = self.win_size
        # a grid inside one window has nothing to shift (unless the shift was fixed when the model was built)
        s = self.shift_size if self.fixed_shift or min(hw) > ws else 0
        win, padded = grid_to_windows(x, hw, ws, (s, s))  # [B*nW, ws*ws, C]
        if self.modulator is not None:
            win = win + self.modulator.weight
        win = self.attn(win, window_attn_mask(hw, padded, ws, (s, s), x.device))
        return windows_to_grid(win, hw, padded, ws, (s, s))

    def forward(self, x: Tensor, hw: HW, reuse: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """x: [B, H*W, C] -> (x, attention output [B, H*W, C]); SkipAt blocks need ``reuse`` [B, H*W, skip_dim]."""
        if x.shape[1] != hw[0] * hw[1]:
            raise UserError(f"LeWinBlock got {x.shape[1]} tokens for a {hw[0]}x{hw[1]} grid")
        if self.skip is None:
            a = self.window_attention(self.norm1(x), hw)
        elif reuse is None:
            raise UserError("a SkipAt LeWinBlock needs the encoder's attention output: pass reuse=")
        else:
            a = self.lift(self.skip_fn(reuse, hw))
        x = x + self.drop_path(a)
        x = x + self.drop_path(self.mlp(self.norm2(x), hw))
        return x, a


class UformerStage(nn.Module):
    """A stack of LeWin blocks at one resolution, shifting on odd blocks (Uformer's BasicUformerLayer);
    ``fixed_shift``: see :class:`LeWinBlock`."""

    def __init__(self, dim: int, depth: int, num_heads: int, win_size: int = 8, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, drop_path: Sequence[float] = (), modulator: bool = False, shift: bool = True,
                 skip: Optional[str] = None, skip_dim: Optional[int] = None, fixed_shift: bool = False) -> None:
        super().__init__()
        dpr = list(drop_path) or [0.0] * depth
        self.blocks = nn.ModuleList(
            LeWinBlock(dim, num_heads, win_size, shift and i % 2 == 1, mlp_ratio, qkv_bias, drop_path=dpr[i],
                       modulator=modulator, skip=skip, skip_dim=skip_dim, fixed_shift=fixed_shift)
            for i in range(depth)
        )

    def forward(self, x: Tensor, hw: HW, reuse: Optional[Sequence[Tensor]] = None) -> tuple[Tensor, list[Tensor]]:
        """x: [B, H*W, C] -> (x, per-block attention outputs). SkipAt block i reuses ``reuse[min(i, len-1)]``."""
        outs = []
        for i, blk in enumerate(self.blocks):
            r = reuse[min(i, len(reuse) - 1)] if reuse else None
            x, a = blk(x, hw, r)
            outs.append(a)
        return x, outs


def to_map(x: Tensor, hw: HW) -> Tensor:
    """[B, H*W, C] -> [B, C, H, W]."""
    return x.transpose(1, 2).reshape(x.shape[0], -1, *hw)


def to_tokens(x: Tensor) -> tuple[Tensor, HW]:
    """[B, C, H, W] -> ([B, H*W, C], (H, W))."""
    return x.flatten(2).transpose(1, 2), (x.shape[2], x.shape[3])


def pad_to_multiple(x: Tensor, multiple: int, mode: str = "reflect") -> Tensor:
    """Pad [..., H, W] at the bottom/right to multiples of ``multiple``; ``'reflect'`` falls back to
    ``'replicate'`` where a side is too short to reflect, ``'zeros'`` pads with zeros."""
    H, W = x.shape[-2:]
    ph, pw = -H % multiple, -W % multiple
    if not (ph or pw):
        return x
    mode = mode if (mode != "reflect" or (ph < H and pw < W)) else "replicate"
    if mode == "zeros":
        return F.pad(x, (0, pw, 0, ph))
    lead = x.shape[:-3]  # reflect/replicate pad [N, C, H, W]: fold any leading axes into N
    y = F.pad(x.reshape(-1, *x.shape[-3:]), (0, pw, 0, ph), mode=mode)
    return y.view(*lead, *y.shape[-3:])


# ------------------------------------------------------------------------------------------------ model
class Uformer(nn.Module):
    """U-shaped LeWin restorer: conv in, L encoder levels (4x4 stride-2 conv down, width x2), bottleneck,
    L decoder levels (2x2 transposed conv up, width / 2, concat the encoder skip), conv out, + input.

    Args:
        embed_dim: width C of the first level (T: 16, S/B: 32).
        depths: 2L + 1 block counts: L encoder levels, bottleneck, L decoder levels (Uformer: L = 4).
        num_heads: per stage; default 1, 2, ..., 2**L, 2**L, ..., 2 as Uformer.
        modulator: learnable modulators in decoder blocks (Uformer: True).
        skip_mode: None (plain Uformer), ``'parametric'`` or ``'identity'``: SkipAt in every decoder block.
        pad_mode: how the image is padded to a multiple of 2**L (``'reflect'``, falls back to ``'replicate'`` for
            tiny images); the output is cropped back.
        shift_from_size: None (default): a stage shifts its windows (odd blocks) wherever its actual grid is larger
            than one window. An int S: decide the shifts once, when the model is built, from a training size S, as
            Uformer's own code does with its ``img_size`` (= the training patch size): the stage at level l shifts
            iff ``S // 2**l > win_size``, at any input size. The authors' SIDD models (S = 128) never shift in the
            bottleneck, also on the 256x256 inputs their test script runs; ``shift_from_size=128`` reproduces them.
    """

    def __init__(self, embed_dim: int = 32, depths: Sequence[int] = (2,) * 9, num_heads: Optional[Sequence[int]] = None,
                 win_size: int = 8, mlp_ratio: float = 4.0, qkv_bias: bool = True, drop_path_rate: float = 0.1,
                 modulator: bool = True, shift: bool = True, skip_mode: Optional[str] = None, in_chans: int = 3,
                 pad_mode: str = "reflect", shift_from_size: Optional[int] = None) -> None:
        super().__init__()
        if len(depths) % 2 == 0 or len(depths) < 3:
            raise UserError(f"depths must have 2L+1 entries (L encoder levels, bottleneck, L decoder), got {depths}")
        if skip_mode not in (None, "parametric", "identity"):
            raise UserError(f"unknown skip_mode {skip_mode!r}: use None, 'parametric' or 'identity'")
        L = len(depths) // 2
        num_heads = list(num_heads or [2**i for i in range(L + 1)] + [2 ** (L - k) for k in range(L)])
        if len(num_heads) != len(depths):
            raise UserError(f"num_heads {num_heads} must have as many entries as depths {list(depths)}")
        self.num_levels, self.embed_dim, self.skip_mode, self.pad_mode = L, embed_dim, skip_mode, pad_mode
        self.depths = tuple(depths)
        self.shift_from_size = self._check_shift_from_size(shift_from_size, win_size, L)
        C = embed_dim
        n_enc = sum(depths[:L])
        enc_dpr = [drop_path_rate * i / max(n_enc - 1, 1) for i in range(n_enc)]  # torch.linspace, on any device
        dec_dpr = enc_dpr[::-1] + [drop_path_rate] * max(0, sum(depths[L + 1:]) - len(enc_dpr))
        kw = dict(win_size=win_size, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias)
        sh = lambda level: self._stage_shift(shift, level, win_size)  # noqa: E731  (shift=, fixed_shift=)

        self.input_proj = nn.Sequential(nn.Conv2d(in_chans, C, 3, padding=1), nn.LeakyReLU(inplace=True))
        self.encoders, self.downs = nn.ModuleList(), nn.ModuleList()
        for l in range(L):
            d = C * 2**l
            dp = enc_dpr[sum(depths[:l]) : sum(depths[: l + 1])]
            self.encoders.append(UformerStage(d, depths[l], num_heads[l], drop_path=dp, **kw, **sh(l)))
            self.downs.append(nn.Conv2d(d, 2 * d, 4, stride=2, padding=1))
        self.bottleneck = UformerStage(C * 2**L, depths[L], num_heads[L], drop_path=[drop_path_rate] * depths[L], **kw,
                                       **sh(L))
        self.ups, self.decoders = nn.ModuleList(), nn.ModuleList()
        in_dim = C * 2**L
        for k in range(L):
            l = L - 1 - k  # encoder level at this resolution
            d = C * 2**l
            dp = dec_dpr[sum(depths[L + 1 : L + 1 + k]) : sum(depths[L + 1 : L + 2 + k])]
            self.ups.append(nn.ConvTranspose2d(in_dim, d, 2, stride=2))
            self.decoders.append(UformerStage(2 * d, depths[L + 1 + k], num_heads[L + 1 + k], drop_path=dp,
                                              modulator=modulator, skip=skip_mode, skip_dim=d, **kw, **sh(l)))
            in_dim = 2 * d
        self.output_proj = nn.Conv2d(2 * C, in_chans, 3, padding=1)
        self.apply(self._init_weights)

    @staticmethod
    def _check_shift_from_size(size: Optional[int], win_size: int, levels: int) -> Optional[int]:
        if size is None:
            return None
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise UserError(f"shift_from_size must be a positive int (the training patch size) or None, got {size!r}")
        if size // 2**levels < win_size:
            raise UserError(f"shift_from_size={size} gives a {size // 2**levels}x{size // 2**levels} grid at the "
                            f"bottleneck, smaller than win_size={win_size}: Uformer's code would shrink its windows "
                            "there, which this model does not; use a size of at least "
                            f"{win_size * 2**levels} (or None)")
        return size

    def _stage_shift(self, shift: bool, level: int, win_size: int) -> dict:
        """``shift``/``fixed_shift`` of the stage at ``level`` (0 = full resolution, L = bottleneck)."""
        if self.shift_from_size is None:
            return dict(shift=shift, fixed_shift=False)
        return dict(shift=shift and self.shift_from_size // 2**level > win_size, fixed_shift=True)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    @property
    def size_multiple(self) -> int:
        """Inputs are padded internally to a multiple of this (2**L)."""
        return 2**self.num_levels

    def pad_input(self, x: Tensor) -> Tensor:
        """Pad [B, C, H, W] at the bottom/right to a multiple of ``size_multiple``."""
        return pad_to_multiple(x, self.size_multiple, self.pad_mode)

    def residual(self, x: Tensor) -> Tensor:
        """Image [B, 3, H, W] (any H, W) -> predicted residual [B, 3, H, W]."""
        H, W = x.shape[-2:]
        y, hw = to_tokens(self.input_proj(self.pad_input(x)))  # [B, Hp*Wp, C]
        skips, attns = [], []
        for enc, down in zip(self.encoders, self.downs):
            y, a = enc(y, hw)
            skips.append((y, hw))
            attns.append(a)
            y, hw = to_tokens(down(to_map(y, hw)))
        y, _ = self.bottleneck(y, hw)
        for k, (up, dec) in enumerate(zip(self.ups, self.decoders)):
            l = self.num_levels - 1 - k
            skip, skip_hw = skips[l]
            y, hw = to_tokens(up(to_map(y, hw)))
            y = torch.cat([y, skip], dim=-1)  # [B, H*W, 2d]
            y, _ = dec(y, hw, attns[l] if self.skip_mode else None)
        return self.output_proj(to_map(y, hw))[..., :H, :W]

    def forward(self, x: Tensor) -> Tensor:
        """Noisy image [B, 3, H, W] in [0, 1] -> restored image [B, 3, H, W] (input + residual)."""
        if x.ndim != 4:
            raise UserError(f"Uformer expects images [B, C, H, W], got shape {tuple(x.shape)}")
        return x + self.residual(x)


def create_uformer(name: str, **overrides) -> Uformer:
    """Build a preset of ``UFORMER_PRESETS`` (``'T'``, ``'S'``, ``'B'``) with keyword overrides."""
    if name not in UFORMER_PRESETS:
        raise UserError(f"unknown Uformer preset {name!r}: use one of {sorted(UFORMER_PRESETS)}")
    return Uformer(**{**UFORMER_PRESETS[name], **overrides})
