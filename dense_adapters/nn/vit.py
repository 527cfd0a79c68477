"""RegViT: a ViT with optional register tokens and SkipAt blocks, in plain PyTorch.

Token layout, defined here once: ``[cls | registers | patches]``. Everything downstream slices tokens through
``num_prefix_tokens`` (cls + registers). Position embeddings cover patches only; a checkpoint's cls position
embedding is folded into ``cls_token`` by the converters (exact, since prefix embeddings are never resized).
"""
from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .block import Block

PAD_MODES = ("center", "corner", "resize", "error")

# name -> (embed_dim, depth, num_heads, ffn)
ARCHS = {
    "tiny": (192, 12, 3, "mlp"),
    "small": (384, 12, 6, "mlp"),
    "base": (768, 12, 12, "mlp"),
    "large": (1024, 24, 16, "mlp"),
    "giant": (1536, 40, 24, "swiglu"),
}

# Full presets of public checkpoints' architectures (weights are loaded separately, see convert.py).
_DINOV2 = dict(img_size=518, patch_size=14, init_values=1e-5, interpolate_antialias=False, interpolate_offset=0.1)
_DINOV2_REG = dict(_DINOV2, num_register_tokens=4, interpolate_antialias=True, interpolate_offset=0.0)
PRESETS = {
    **{f"dinov2_vit{a[0]}14": dict(_DINOV2, arch=a) for a in ("small", "base", "large", "giant")},
    **{f"dinov2_vit{a[0]}14_reg4": dict(_DINOV2_REG, arch=a) for a in ("small", "base", "large", "giant")},
    **{
        f"deit3_{a}_patch16_224": dict(arch=a, img_size=224, patch_size=16, init_values=1e-6,
                                       interpolate_antialias=True)
        for a in ("small", "base", "large")
    },
    **{
        f"vit_{a}_patch16_224": dict(arch=a, img_size=224, patch_size=16, interpolate_antialias=True)
        for a in ("tiny", "small", "base", "large")
    },
}


def _pair(x: Union[int, Sequence[int]]) -> tuple[int, int]:
    return (x, x) if isinstance(x, int) else (int(x[0]), int(x[1]))


class PatchEmbed(nn.Module):
    """Non-overlapping patches by a strided conv: [B, 3, H, W] -> [B, C, H/p, W/p]."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int, bias: bool = True) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, patch_size, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


class RegViT(nn.Module):
    """Vision Transformer with ``num_register_tokens`` registers (Darcet et al.) and SkipAt blocks.

    Args:
        arch: a key of ``ARCHS`` giving width, depth, heads and FFN; explicit ``embed_dim``/``depth``/
            ``num_heads``/``ffn_layer`` override it.
        img_size: the size the position embedding is stored for; any input size works (it is interpolated).
        num_register_tokens: learnable tokens after cls, without position embedding, dropped from dense outputs.
        skip_layers: 0-based indices of SkipAt blocks (paper default for 12 blocks: 3..8). Block 0 cannot skip.
        skip_mode: ``'parametric'`` (SkipAt's Phi) or ``'identity'`` (reuse the previous attention output).
        init_values: LayerScale init (None: no LayerScale).
        interpolate_antialias, interpolate_offset: position-embedding resizing as DINOv2 does it (bicubic; the
            offset form scales by (n + offset) / n, DINOv2 without registers uses 0.1, with registers 0).
        pad_mode: inputs whose sides are not a multiple of the patch: ``'center'`` zero-pads evenly on both
            sides (DINOv2's CenterPadding; the grid then covers the padded image), ``'corner'`` pads bottom and
            right, ``'resize'`` resizes bilinearly to the nearest multiple, ``'error'`` refuses them.
        fused_attn: use ``scaled_dot_product_attention`` (the explicit path runs when probabilities are asked).
    """

    def __init__(
        self,
        arch: str = "base",
        img_size: Union[int, Sequence[int]] = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        embed_dim: Optional[int] = None,
        depth: Optional[int] = None,
        num_heads: Optional[int] = None,
        ffn_layer: Optional[str] = None,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        init_values: Optional[float] = None,
        class_token: bool = True,
        num_register_tokens: int = 0,
        drop_path_rate: float = 0.0,
        drop_path_uniform: bool = False,
        attn_drop_rate: float = 0.0,
        proj_drop_rate: float = 0.0,
        pos_drop_rate: float = 0.0,
        skip_layers: Iterable[int] = (),
        skip_mode: str = "parametric",
        interpolate_antialias: bool = False,
        interpolate_offset: float = 0.0,
        final_norm: bool = True,
        pad_mode: str = "center",
        fused_attn: bool = True,
        norm_eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"unknown arch {arch!r}: use one of {sorted(ARCHS)} or pass embed_dim/depth/num_heads")
        a_dim, a_depth, a_heads, a_ffn = ARCHS[arch]
        embed_dim, depth = embed_dim or a_dim, depth or a_depth
        num_heads, ffn_layer = num_heads or a_heads, ffn_layer or a_ffn
        if pad_mode not in PAD_MODES:
            raise ValueError(f"unknown pad_mode {pad_mode!r}: use one of {PAD_MODES}")
        skip_layers = sorted({int(i) % depth for i in skip_layers})
        if 0 in skip_layers:
            raise ValueError("skip_layers contains block 0, which has no earlier attention to reuse: start at 1")
        if num_register_tokens < 0:
            raise ValueError(f"num_register_tokens must be >= 0, got {num_register_tokens}")

        self.embed_dim = self.num_features = embed_dim
        self.depth = depth
        self.num_heads = num_heads
        self.patch_size = patch_size
        self.grid_size = tuple(s // patch_size for s in _pair(img_size))
        self.num_register_tokens = num_register_tokens
        self.has_class_token = class_token
        self.num_prefix_tokens = int(class_token) + num_register_tokens
        self.skip_layers = tuple(skip_layers)
        self.interpolate_antialias = interpolate_antialias
        self.interpolate_offset = interpolate_offset
        self.pad_mode = pad_mode

        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if class_token else None
        self.reg_token = nn.Parameter(torch.zeros(1, num_register_tokens, embed_dim)) if num_register_tokens else None
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid_size[0] * self.grid_size[1], embed_dim))
        self.pos_drop = nn.Dropout(pos_drop_rate)
        # plain Python (not torch.linspace(...).tolist()) so that building on the meta device works (FSDP)
        dpr = [drop_path_rate if drop_path_uniform else drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList(
            Block(
                embed_dim, num_heads, mlp_ratio, qkv_bias, ffn_layer, init_values, dpr[i], attn_drop_rate,
                proj_drop_rate, skip=skip_mode if i in skip_layers else None,
                num_prefix_tokens=self.num_prefix_tokens, fused_attn=fused_attn, norm_eps=norm_eps,
            )
            for i in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps) if final_norm else nn.Identity()
        self.init_weights()

    # ------------------------------------------------------------------ init
    def init_weights(self) -> None:
        """Truncated-normal linears and position embedding, tiny cls/register init (as DINOv2)."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token, std=1e-6)
        if self.reg_token is not None:
            nn.init.normal_(self.reg_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    # ------------------------------------------------------------ embedding
    def _fit_input(self, x: Tensor) -> Tensor:
        H, W = x.shape[-2:]
        p = self.patch_size
        if H % p == 0 and W % p == 0:
            return x
        Hp, Wp = math.ceil(H / p) * p, math.ceil(W / p) * p
        if self.pad_mode == "error":
            raise ValueError(f"input {H}x{W} is not a multiple of the patch size {p}: resize it or set pad_mode")
        if self.pad_mode == "resize":
            Hr, Wr = max(p, round(H / p) * p), max(p, round(W / p) * p)
            return F.interpolate(x, size=(Hr, Wr), mode="bilinear", align_corners=False)
        top, left = ((Hp - H) // 2, (Wp - W) // 2) if self.pad_mode == "center" else (0, 0)
        return F.pad(x, (left, Wp - W - left, top, Hp - H - top))

    def interpolate_pos_embed(self, hw: tuple[int, int]) -> Tensor:
        """Position embedding for a (h, w) patch grid: [1, h*w, C], resized bicubically from the stored grid."""
        if tuple(hw) == self.grid_size:
            return self.pos_embed
        gh, gw = self.grid_size
        pe = self.pos_embed.float().reshape(1, gh, gw, -1).permute(0, 3, 1, 2)
        if self.interpolate_offset:
            scale = ((hw[0] + self.interpolate_offset) / gh, (hw[1] + self.interpolate_offset) / gw)
            pe = F.interpolate(pe, scale_factor=scale, mode="bicubic", antialias=self.interpolate_antialias)
        else:
            pe = F.interpolate(pe, size=hw, mode="bicubic", antialias=self.interpolate_antialias)
        if tuple(pe.shape[-2:]) != tuple(hw):
            raise RuntimeError(f"position embedding resized to {tuple(pe.shape[-2:])}, expected {tuple(hw)}")
        return pe.flatten(2).transpose(1, 2).to(self.pos_embed.dtype)

    def prepare_tokens(self, x: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """Image [B, 3, H, W] -> tokens [B, P + h*w, C] in ``[cls | registers | patches]`` order, and (h, w)."""
        if x.ndim != 4:
            raise ValueError(f"RegViT expects images [B, C, H, W], got shape {tuple(x.shape)}")
        x = self.patch_embed(self._fit_input(x))  # [B, C, h, w]
        hw = (x.shape[2], x.shape[3])
        x = x.flatten(2).transpose(1, 2) + self.interpolate_pos_embed(hw)
        prefix = [t.expand(x.shape[0], -1, -1) for t in (self.cls_token, self.reg_token) if t is not None]
        return self.pos_drop(torch.cat(prefix + [x], dim=1)), hw

    # -------------------------------------------------------------- forward
    def _norm_index(self, indices: Union[None, int, Sequence[int]]) -> list[int]:
        if indices is None:
            return [self.depth - 1]
        if isinstance(indices, int):  # last n blocks, as timm and DINOv2
            return list(range(self.depth - indices, self.depth))
        out = [i % self.depth if -self.depth <= i < self.depth else None for i in indices]
        if None in out:
            raise IndexError(f"block indices {list(indices)} out of range for depth {self.depth}")
        return out

    def forward_blocks(
        self, x: Tensor, indices: Union[None, int, Sequence[int]] = None, capture: Sequence[str] = ("out",)
    ) -> dict:
        """Run the blocks up to the last requested index and capture per-block tensors.

        ``capture`` names any of: ``'out'`` (block output tokens [B, N, C], no final norm), ``'attn'``
        (probabilities [B, heads, N, N]), ``'attn_out'`` (attention branch output [B, N, C]), ``'q'``, ``'k'``,
        ``'v'`` (per head [B, heads, N, head_dim]). Returns a dict of lists in index order plus ``'hw'``.
        Attention of a SkipAt block does not exist: asking for it raises.
        """
        idx = self._norm_index(indices)
        want = set(capture)
        unknown = want - {"out", "attn", "attn_out", "q", "k", "v"}
        if unknown:
            raise ValueError(f"unknown capture {sorted(unknown)}: use out, attn, attn_out, q, k, v")
        if want & {"attn", "q", "k", "v"} and set(idx) & set(self.skip_layers):
            raise ValueError(f"blocks {sorted(set(idx) & set(self.skip_layers))} are SkipAt blocks and compute "
                             "no attention: pick other indices")
        x, hw = self.prepare_tokens(x)
        res: dict = {k: [] for k in capture}
        res["hw"] = hw
        prev = None
        keep, want_qkv, want_attn = set(idx), bool(want & {"q", "k", "v"}), "attn" in want
        for i in range(max(idx) + 1):  # indexing, not slicing: a ModuleList slice builds a new module per call
            blk = self.blocks[i]
            if want_qkv and i in keep:
                q, k, v = blk.attn.qkv_heads(blk.norm1(x))
                for name, t in (("q", q), ("k", k), ("v", v)):
                    if name in want:
                        res[name].append(t)
            x, prev, probs = blk(x, hw, prev, return_attn=want_attn and i in keep)
            if i in keep:
                for name, t in (("out", x), ("attn", probs), ("attn_out", prev)):
                    if name in want:
                        res[name].append(t)
        return res

    def forward_intermediates(
        self,
        x: Tensor,
        indices: Union[None, int, Sequence[int]] = None,
        norm: bool = True,
        return_prefix_tokens: bool = False,
        output_fmt: str = "NCHW",
    ) -> Union[list[Tensor], tuple[list[Tensor], list[Tensor]]]:
        """Dense features of the blocks at ``indices`` (int n: the last n blocks; default: the last block).

        Returns patch maps [B, C, h, w] (``output_fmt='NLC'``: [B, h*w, C]), with ``norm`` the final norm
        applied, and with ``return_prefix_tokens`` also the prefix tokens [B, num_prefix_tokens, C] per index.
        """
        if output_fmt not in ("NCHW", "NLC"):
            raise ValueError(f"output_fmt must be 'NCHW' or 'NLC', got {output_fmt!r}")
        res = self.forward_blocks(x, indices, ("out",))
        (h, w), p = res["hw"], self.num_prefix_tokens
        maps, prefixes = [], []
        for t in res["out"]:
            t = self.norm(t) if norm else t
            patches = t[:, p:]
            if output_fmt == "NCHW":
                patches = patches.transpose(1, 2).reshape(t.shape[0], -1, h, w)
            maps.append(patches)
            prefixes.append(t[:, :p])
        return (maps, prefixes) if return_prefix_tokens else maps

    def forward_features(self, x: Tensor) -> dict:
        """DINOv2-style named outputs of the last block after the final norm."""
        res = self.forward_blocks(x, None, ("out",))
        t = self.norm(res["out"][-1])
        c = int(self.has_class_token)
        return {
            "x_norm_clstoken": t[:, 0] if c else None,
            "x_norm_regtokens": t[:, c : self.num_prefix_tokens],
            "x_norm_patchtokens": t[:, self.num_prefix_tokens :],
            "x_prenorm": res["out"][-1],
            "hw": res["hw"],
        }

    def forward(self, x: Tensor) -> Tensor:
        """All tokens of the last block after the final norm: [B, P + h*w, C]."""
        return self.norm(self.forward_blocks(x, None, ("out",))["out"][-1])


def create_regvit(name: str, **overrides) -> RegViT:
    """Build a preset of ``PRESETS`` (e.g. ``'dinov2_vits14_reg4'``), with keyword overrides."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: use one of {sorted(PRESETS)}")
    return RegViT(**{**PRESETS[name], **overrides})
