"""Multi-head self-attention with a fused (SDPA) path, an explicit path that returns probabilities, and optional RoPE."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import UserError
from .rope import rope_apply

RopeTables = tuple[Tensor, Tensor]  # (sin, cos), each [L, head_dim]: the rotation of the L patch tokens


class Attention(nn.Module):
    """Multi-head self-attention, parameter names as in timm/DINOv2 (``qkv``, ``proj``).

    ``forward`` uses ``F.scaled_dot_product_attention`` unless ``fused=False`` or the caller asks for the attention
    probabilities, in which case the explicit softmax path runs (same numbers up to rounding).

    RoPE is injected per call: ``rope=(sin, cos)`` for the L patch tokens rotates the queries and keys of tokens
    ``[num_prefix_tokens, num_prefix_tokens + L)``; the prefix before them (cls, registers, test-time registers) and
    any token after them stay unrotated. The caller (the block, which knows the token layout) passes
    ``num_prefix_tokens`` with the tables.
    """

    def __init__(self, dim: int, *, num_heads: int = 8, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0, fused: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise UserError(f"dim={dim} is not divisible by num_heads={num_heads}: pick a head count that divides it")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.fused = fused
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def qkv_heads(self, x: Tensor, rope: Optional[RopeTables] = None,
                  num_prefix_tokens: int = 0) -> tuple[Tensor, Tensor, Tensor]:
        """Project tokens to per-head queries, keys and values, each [B, heads, N, head_dim] (RoPE applied to the
        patch tokens after the first ``num_prefix_tokens``)."""
        B, N, C = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        if rope is not None:
            q, k = _rotate(q, rope, num_prefix_tokens), _rotate(k, rope, num_prefix_tokens)
        return q, k, v

    def forward(self, x: Tensor, return_attn: bool = False, *, rope: Optional[RopeTables] = None,
                num_prefix_tokens: int = 0,
                qkv: Optional[tuple[Tensor, Tensor, Tensor]] = None) -> Tensor | tuple[Tensor, Tensor]:
        """x: [B, N, C] -> [B, N, C] (and probabilities [B, heads, N, N] if ``return_attn``).

        ``qkv``: queries/keys/values already computed by :meth:`qkv_heads` (so a caller that captures them does not
        project twice).
        """
        B, N, C = x.shape
        q, k, v = qkv if qkv is not None else self.qkv_heads(x, rope, num_prefix_tokens)
        attn = None
        if self.fused and not return_attn:
            x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop.p if self.training else 0.0)
        else:
            attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)  # [B, h, N, N]
            x = self.attn_drop(attn) @ v
        x = x.transpose(1, 2).reshape(B, N, C)
        x = self.proj_drop(self.proj(x))
        return (x, attn) if return_attn else x



def _rotate(t: Tensor, rope: RopeTables, p: int) -> Tensor:
    """RoPE on tokens [p, p + L) of t [B, heads, N, d]; the others unchanged."""
    sin, cos = rope
    L = sin.shape[0]
    if p + L > t.shape[2]:
        raise UserError(f"RoPE for {L} patch tokens after {p} prefix tokens, but the sequence has {t.shape[2]} "
                        "tokens: num_prefix_tokens must count cls and register tokens")
    return torch.cat([t[:, :, :p], rope_apply(t[:, :, p : p + L], sin, cos), t[:, :, p + L :]], dim=2)
