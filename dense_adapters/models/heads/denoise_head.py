"""Uformer-style decoder over multi-level ViT features that predicts an image residual for denoising."""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from ...errors import UserError
from ...nn.uformer import UformerStage, to_map, to_tokens
from ...registry import MODELS


@MODELS.register_module()
class DenoiseHead(BaseModule):
    """``type='dense_adapters.DenoiseHead'``: ViT levels -> Uformer decoder -> residual [B, 3, H, W].

    The L selected backbone levels (all on the 1/patch grid) stand in for Uformer's encoder: level i (shallow to
    deep) is projected by a 1x1 conv to width ``C * 2**(i+1)`` and resized bilinearly to 1/2**(i+1) of the
    image, so the deepest one is the bottleneck at 1/2**L; a 3x3 conv of the image (Uformer's input projection)
    is the full-resolution skip. The decoder then runs Uformer's stages: bottleneck, and for each finer level a
    2x2 transposed conv (width / 2), concatenation with the skip, LeWin blocks with modulators; a 3x3 conv
    gives the residual.

    Args:
        in_channels: backbone width per selected level (an int for all).
        in_index: which backbone outputs to use, shallow to deep.
        embed_dim: C, width of the full-resolution level.
        depths: LeWin blocks of the bottleneck and of each decoder level (L + 1 entries; default 1 each).
        num_heads: per stage (default 2**L, 2**(L-1), ..., 1, times 2 for the decoder levels, as Uformer).
    """

    def __init__(self, in_channels: Union[int, Sequence[int]], in_index: Sequence[int] = (0, 1, 2, 3),
                 embed_dim: int = 32, depths: Optional[Sequence[int]] = None,
                 num_heads: Optional[Sequence[int]] = None, win_size: int = 8, mlp_ratio: float = 4.0,
                 modulator: bool = True, out_channels: int = 3, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_index = list(in_index)
        L = self.num_levels = len(self.in_index)
        in_channels = [in_channels] * L if isinstance(in_channels, int) else list(in_channels)
        if len(in_channels) != L:
            raise UserError(f"in_channels {in_channels} and in_index {self.in_index} must have the same length")
        depths = list(depths or [1] * (L + 1))
        num_heads = list(num_heads or [2**L] + [2 ** (L - k) for k in range(L)])
        if len(depths) != L + 1 or len(num_heads) != L + 1:
            raise UserError(f"depths {depths} and num_heads {num_heads} need L + 1 = {L + 1} entries")
        C = embed_dim
        kw = dict(win_size=win_size, mlp_ratio=mlp_ratio)
        self.reassemble = nn.ModuleList(nn.Conv2d(c, C * 2 ** (i + 1), 1) for i, c in enumerate(in_channels))
        self.input_proj = nn.Sequential(nn.Conv2d(3, C, 3, padding=1), nn.LeakyReLU(inplace=True))
        self.bottleneck = UformerStage(C * 2**L, depths[0], num_heads[0], **kw)
        self.ups, self.decoders = nn.ModuleList(), nn.ModuleList()
        for k in range(L):
            l = L - 1 - k  # level 0 is the full-resolution one
            self.ups.append(nn.ConvTranspose2d(C * 2 ** (l + 2) if k else C * 2**L, C * 2**l, 2, stride=2))
            self.decoders.append(UformerStage(2 * C * 2**l, depths[k + 1], num_heads[k + 1], modulator=modulator, **kw))
        self.output_proj = nn.Conv2d(2 * C, out_channels, 3, padding=1)

    @property
    def size_multiple(self) -> int:
        """Image sides must be a multiple of this (2**L)."""
        return 2**self.num_levels

    def forward(self, inputs: Sequence[Tensor], img: Tensor) -> Tensor:
        """inputs: backbone levels [B, Ci, h, w]; img: [B, 3, H, W] (H, W multiples of 2**L) -> [B, 3, H, W]."""
        H, W = img.shape[-2:]
        m = self.size_multiple
        if H % m or W % m:
            raise UserError(f"DenoiseHead needs image sides that are multiples of {m}, got {H}x{W}: pad the input "
                            "(dense_adapters.Restorer does)")
        feats = []
        for i, (idx, proj) in enumerate(zip(self.in_index, self.reassemble)):
            x = inputs[idx]
            x = x[0] if isinstance(x, (list, tuple)) else x  # [map, cls] from output_cls_token backbones
            size = (H // 2 ** (i + 1), W // 2 ** (i + 1))
            feats.append(F.interpolate(proj(x), size=size, mode="bilinear", align_corners=False))
        skips = [self.input_proj(img)] + feats[:-1]  # level l at 1/2**l
        y, hw = to_tokens(feats[-1])
        y, _ = self.bottleneck(y, hw)
        for k, (up, dec) in enumerate(zip(self.ups, self.decoders)):
            skip, _ = to_tokens(skips[self.num_levels - 1 - k])
            y, hw = to_tokens(up(to_map(y, hw)))
            y, _ = dec(torch.cat([y, skip], dim=-1), hw)
        return self.output_proj(to_map(y, hw))
