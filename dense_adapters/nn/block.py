"""Pre-norm transformer block whose attention can be replaced by SkipAt's function."""
from __future__ import annotations

from typing import Optional

import torch
from timm.layers import DropPath, GluMlp, LayerScale, Mlp
from torch import Tensor, nn

from .attention import Attention
from .skip_attention import build_skip_fn


def build_ffn(kind: str, dim: int, mlp_ratio: float, proj_drop: float = 0.0) -> nn.Module:
    """``'mlp'``: Linear-GELU-Linear. ``'swiglu'``: DINOv2's packed SwiGLU (``fc1`` = w12, ``fc2`` = w3).

    For SwiGLU the hidden width follows DINOv2: ``int(dim * mlp_ratio * 2 / 3)`` rounded up to a multiple of 8.
    """
    hidden = int(dim * mlp_ratio)
    if kind == "mlp":
        return Mlp(dim, hidden, drop=proj_drop)
    if kind == "swiglu":
        hidden = (int(hidden * 2 / 3) + 7) // 8 * 8
        return GluMlp(dim, 2 * hidden, act_layer=nn.SiLU, gate_last=False, drop=proj_drop)
    raise ValueError(f"unknown ffn {kind!r}: use 'mlp' or 'swiglu'")


class Block(nn.Module):
    """x + ls1(attn(norm1(x))); x + ls2(mlp(norm2(x))), parameter names as in timm.

    With ``skip`` set ('parametric' or 'identity') the block is a SkipAt block: it owns no ``norm1``/``attn``
    and its attention output is built from ``prev_attn``, the attention output of the block before it:
    prefix tokens (cls and registers, the first ``num_prefix_tokens``) reuse that output unchanged, as the
    SkipAt reference does for the cls token, because they have no place on the patch grid; patch tokens go
    through Phi on their (H, W) grid.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        ffn: str = "mlp",
        init_values: Optional[float] = None,
        drop_path: float = 0.0,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        skip: Optional[str] = None,
        num_prefix_tokens: int = 1,
        fused_attn: bool = True,
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.skip = skip
        self.num_prefix_tokens = num_prefix_tokens
        if skip is None:
            self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
            self.attn = Attention(dim, num_heads, qkv_bias, attn_drop, proj_drop, fused=fused_attn)
        else:
            self.skip_fn = build_skip_fn(skip, dim)
        self.ls1 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = build_ffn(ffn, dim, mlp_ratio, proj_drop)
        self.ls2 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    @property
    def is_skipped(self) -> bool:
        return self.skip is not None

    def attention(
        self, x: Tensor, hw: tuple[int, int], prev_attn: Optional[Tensor] = None, return_attn: bool = False
    ) -> tuple[Tensor, Optional[Tensor]]:
        """Attention branch output [B, N, C] (before LayerScale) and, if asked and computed, probabilities."""
        if self.skip is None:
            if return_attn:
                return self.attn(self.norm1(x), return_attn=True)
            return self.attn(self.norm1(x)), None
        if prev_attn is None:
            raise ValueError("a SkipAt block needs the previous block's attention output: the first block cannot skip")
        p = self.num_prefix_tokens
        return torch.cat([prev_attn[:, :p], self.skip_fn(prev_attn[:, p:], hw)], dim=1), None

    def forward(
        self, x: Tensor, hw: tuple[int, int], prev_attn: Optional[Tensor] = None, return_attn: bool = False
    ) -> tuple[Tensor, Tensor, Optional[Tensor]]:
        """x: [B, N, C] -> (x [B, N, C], attention output [B, N, C], probabilities [B, h, N, N] or None)."""
        a, probs = self.attention(x, hw, prev_attn, return_attn)
        x = x + self.drop_path1(self.ls1(a))
        x = x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))
        return x, a, probs
