"""Pre-norm transformer block whose attention can be replaced by SkipAt's function."""
from __future__ import annotations

from functools import partial
from typing import NamedTuple, Optional

import torch
from timm.layers import DropPath, GluMlp, LayerScale, Mlp, QuickGELU
from torch import Tensor, nn

from ..errors import UserError
from .attention import Attention, RopeTables
from .skip_attention import build_skip_fn

ACT_LAYERS = {"gelu": nn.GELU, "gelu_tanh": partial(nn.GELU, approximate="tanh"), "quick_gelu": QuickGELU}
FFN_LAYERS = ("mlp", "swiglu")


def build_ffn(kind: str, dim: int, *, mlp_ratio: float = 4.0, hidden_features: Optional[int] = None,
              align_to: int = 8, act_layer: str = "gelu", proj_drop: float = 0.0) -> nn.Module:
    """``'mlp'``: Linear-act-Linear (``fc1``, ``fc2``). ``'swiglu'``: packed SwiGLU, ``fc1`` = [gate; value]
    (``silu(gate) * value``), ``fc2`` (DINOv2's ``w12``/``w3``, DINOv3's ``w1``+``w2``/``w3``).

    Hidden width: ``hidden_features`` if given, else ``int(dim * mlp_ratio)``; for SwiGLU, when not given, two thirds
    of that rounded up to a multiple of ``align_to`` (DINOv2/DINOv3: 8; DINOv3-7B: 64).
    """
    if act_layer not in ACT_LAYERS:
        raise UserError(f"unknown act_layer {act_layer!r}: use one of {sorted(ACT_LAYERS)}")
    hidden = hidden_features or int(dim * mlp_ratio)
    if kind == "mlp":
        return Mlp(dim, hidden, act_layer=ACT_LAYERS[act_layer], drop=proj_drop)
    if kind == "swiglu":
        if not hidden_features:
            d = int(hidden * 2 / 3)
            hidden = d + (-d % align_to)
        return GluMlp(dim, 2 * hidden, act_layer=nn.SiLU, gate_last=False, drop=proj_drop)
    raise UserError(f"unknown ffn {kind!r}: use one of {FFN_LAYERS}")


class BlockOutput(NamedTuple):
    """What a block returns (unpacks as ``x, attn_out, attn``).

    - ``x`` [B, N, C]: the block's output tokens;
    - ``attn_out`` [B, N, C]: the attention branch's output before LayerScale (what the next SkipAt block reuses);
    - ``attn`` [B, heads, N, N] or None: attention probabilities, only when asked for (never for a SkipAt block).
    """

    x: Tensor
    attn_out: Tensor
    attn: Optional[Tensor]


QKV = tuple[Tensor, Tensor, Tensor]


class Block(nn.Module):
    """x + ls1(attn(norm1(x))); x + ls2(mlp(norm2(x))), parameter names as in timm.

    With ``skip`` set ('parametric' or 'identity') the block is a SkipAt block: it owns no ``norm1``/``attn`` and its
    attention output is built from ``prev_attn``, the attention output of the block before it: prefix tokens (the
    first ``num_prefix_tokens``: cls, registers) reuse that output unchanged, as the SkipAt reference does for the cls
    token, because they have no place on the patch grid; patch tokens go through Phi on their (H, W) grid. A SkipAt
    block needs no RoPE (it computes no attention); tokens after the patches, if any, are also reused unchanged.
    """

    def __init__(
        self,
        dim: int,
        *,
        num_heads: int,
        mlp_ratio: float = 4.0,
        mlp_hidden_dim: Optional[int] = None,
        ffn: str = "mlp",
        ffn_align: int = 8,
        act_layer: str = "gelu",
        qkv_bias: bool = True,
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
            self.attn = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop,
                                  proj_drop=proj_drop, fused=fused_attn)
        else:
            self.skip_fn = build_skip_fn(skip, dim)
        self.ls1 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = build_ffn(ffn, dim, mlp_ratio=mlp_ratio, hidden_features=mlp_hidden_dim, align_to=ffn_align,
                             act_layer=act_layer, proj_drop=proj_drop)
        self.ls2 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    @property
    def is_skipped(self) -> bool:
        return self.skip is not None

    def attention(self, x: Tensor, hw: tuple[int, int], prev_attn: Optional[Tensor] = None,
                  return_attn: bool = False, *, rope: Optional[RopeTables] = None) -> tuple[Tensor, Optional[Tensor]]:
        """Attention branch output [B, N, C] (before LayerScale) and, if asked and computed, probabilities."""
        return self._attention(x, hw, prev_attn, return_attn, rope, None)[:2]

    def _attention(self, x: Tensor, hw: tuple[int, int], prev_attn: Optional[Tensor], return_attn: bool,
                   rope: Optional[RopeTables], qkv_out: Optional[list]) -> tuple[Tensor, Optional[Tensor]]:
        if self.skip is None:
            h = self.norm1(x)
            qkv = self.attn.qkv_heads(h, rope, self.num_prefix_tokens)
            if qkv_out is not None:
                qkv_out.extend(qkv)
            if return_attn:
                return self.attn(h, return_attn=True, qkv=qkv)
            return self.attn(h, qkv=qkv), None
        if prev_attn is None:
            raise UserError("a SkipAt block needs the previous block's attention output: the first block cannot skip")
        p, (H, W) = self.num_prefix_tokens, hw
        patches = self.skip_fn(prev_attn[:, p : p + H * W], hw)
        return torch.cat([prev_attn[:, :p], patches, prev_attn[:, p + H * W :]], dim=1), None

    def _run(self, x: Tensor, hw: tuple[int, int], prev_attn: Optional[Tensor], rope: Optional[RopeTables],
             return_attn: bool, qkv_out: Optional[list]) -> BlockOutput:
        a, probs = self._attention(x, hw, prev_attn, return_attn, rope, qkv_out)
        x = x + self.drop_path1(self.ls1(a))
        x = x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))
        return BlockOutput(x, a, probs)

    def forward(self, x: Tensor, hw: tuple[int, int], prev_attn: Optional[Tensor] = None,
                return_attn: bool = False, *, rope: Optional[RopeTables] = None,
                qkv_out: Optional[list] = None) -> BlockOutput:
        """x: [B, N, C] tokens of an (H, W) patch grid -> :class:`BlockOutput` (x, attn_out, attn).

        ``prev_attn``: the previous block's ``attn_out`` (needed by SkipAt blocks); ``rope``: the (sin, cos) tables of
        the patch tokens for RoPE models; ``qkv_out``: a list that receives q, k, v (see :meth:`forward_capture`).
        """
        return self._run(x, hw, prev_attn, rope, return_attn, qkv_out)

    def forward_capture(self, x: Tensor, hw: tuple[int, int], prev_attn: Optional[Tensor] = None,
                        return_attn: bool = False, *, rope: Optional[RopeTables] = None) -> tuple[BlockOutput, QKV]:
        """:meth:`forward` that also returns the queries, keys and values it computed (each [B, heads, N, d], RoPE
        applied), without projecting twice. Not for SkipAt blocks (they have none). Runs through ``self(...)``, so the
        block's forward hooks fire as on a plain call."""
        if self.skip is not None:
            raise UserError("a SkipAt block computes no queries, keys or values")
        qkv: list = []
        out = self(x, hw, prev_attn, return_attn, rope=rope, qkv_out=qkv)
        return out, (qkv[0], qkv[1], qkv[2])
