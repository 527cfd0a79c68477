"""RegViT: a ViT with optional register tokens, RoPE and SkipAt blocks, in plain PyTorch.

Token layout, defined here once: ``[cls | registers | patches]``. Everything downstream slices tokens through
``num_prefix_tokens`` (cls + registers). Position embeddings (when used) cover patches only; a checkpoint's cls
position embedding is folded into ``cls_token`` by the converters (exact, since prefix embeddings are never
resized). RoPE models (DINOv3) have no position-embedding table: any size and aspect works without interpolation.
"""
from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from timm.layers import LayerScale
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ..errors import UserError
from .block import Block
from .rope import RopePositionEmbedding

PAD_MODES = ("center", "corner", "resize", "error")
SKIP_CHAINS = ("previous", "phi")

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
# SkipAt's released ViTs (skip-attention model/vit_skipat.py: timm 0.5.4's ViT-T/S/B with Phi in blocks 3..8);
# their checkpoints load with nn.convert's 'skipat' converter
PRESETS.update({
    f"skipat_{a}_patch16_224": dict(arch=a, img_size=224, patch_size=16, interpolate_antialias=True,
                                    skip_layers=(3, 4, 5, 6, 7, 8))
    for a in ("tiny", "small", "base")
})
# DINOv3 (facebookresearch/dinov3 hub/backbones.py): RoPE base 100 (train-time coordinate rescale 2), 4 registers
# ("storage tokens"), a mask token, LayerScale 1e-5, LayerNorm eps 1e-5, qkv bias (K third masked to zero) except 7B.
_DINOV3 = dict(img_size=224, patch_size=16, init_values=1e-5, norm_eps=1e-5, num_register_tokens=4, mask_token=True,
               use_pos_embed=False, rope=True, rope_base=100.0, rope_rescale_coords=2.0, qkv_bias=True)
PRESETS.update({
    "dinov3_vits16": dict(_DINOV3, arch="small"),
    "dinov3_vits16plus": dict(_DINOV3, arch="small", ffn_layer="swiglu", mlp_ratio=6.0),  # SwiGLU hidden 1536
    "dinov3_vitb16": dict(_DINOV3, arch="base"),
    "dinov3_vitl16": dict(_DINOV3, arch="large"),
    "dinov3_vitl16plus": dict(_DINOV3, arch="large", ffn_layer="swiglu", mlp_ratio=6.0),  # hidden 4096
    "dinov3_vith16plus": dict(_DINOV3, arch="large", embed_dim=1280, depth=32, num_heads=20, ffn_layer="swiglu",
                              mlp_ratio=6.0),  # hidden 5120
    "dinov3_vit7b16": dict(_DINOV3, arch="giant", embed_dim=4096, depth=40, num_heads=32, ffn_layer="swiglu",
                           mlp_ratio=3.0, ffn_align=64, qkv_bias=False),  # hidden 8192
})
# OpenCLIP image towers (open_clip VisionTransformer): no patch bias, ln_pre (norm_pre) after the position
# embedding, LayerNorm eps 1e-5; OpenAI's weights use QuickGELU.
_OPENCLIP = dict(img_size=224, patch_bias=False, norm_pre=True, norm_eps=1e-5, interpolate_antialias=True)
PRESETS.update({
    "openclip_vitb16": dict(_OPENCLIP, arch="base", patch_size=16),
    "openclip_vitb16_quickgelu": dict(_OPENCLIP, arch="base", patch_size=16, act_layer="quick_gelu"),
    "openclip_vitl14": dict(_OPENCLIP, arch="large", patch_size=14),
    "openclip_vitl14_quickgelu": dict(_OPENCLIP, arch="large", patch_size=14, act_layer="quick_gelu"),
})


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
    """Vision Transformer with ``num_register_tokens`` registers (Darcet et al.), optional RoPE and SkipAt blocks.

    Args:
        arch: a key of ``ARCHS`` giving width, depth, heads and FFN; explicit ``embed_dim``/``depth``/
            ``num_heads``/``ffn_layer`` override it.
        img_size: the size the position embedding is stored for; any input size works (it is interpolated).
        num_register_tokens: learnable tokens after cls, without position embedding, dropped from dense outputs.
        mask_token: hold a ``mask_token`` [1, D] (DINOv2/DINOv3 masked pretraining); ``prepare_tokens(x, masks)``
            puts it at masked patches.
        use_pos_embed: a learned position-embedding table (False for RoPE-only models such as DINOv3).
        rope: axial 2-D RoPE on the patch tokens (``rope.py``) with ``rope_base`` (or ``rope_min_period`` and
            ``rope_max_period``), ``rope_normalize_coords``, training-time ``rope_shift_coords`` /
            ``rope_jitter_coords`` / ``rope_rescale_coords``, ``rope_periods_dtype`` ('fp32' or 'bf16').
        norm_pre: a LayerNorm on all tokens after the prefix concat and position embedding (CLIP's ``ln_pre``).
        patch_bias: bias of the patch-embedding conv (CLIP has none).
        ffn_layer: ``'mlp'`` or ``'swiglu'``; ``mlp_ratio``, ``mlp_hidden_dim`` (explicit hidden width),
            ``ffn_align`` (SwiGLU rounding, 8; DINOv3-7B 64), ``act_layer`` (``'gelu'``, ``'quick_gelu'``,
            ``'gelu_tanh'``) shape it.
        skip_layers: 0-based indices of SkipAt blocks (paper default for 12 blocks: 3..8). Block 0 cannot skip.
        skip_mode: ``'parametric'`` (SkipAt's Phi) or ``'identity'`` (reuse the previous attention output).
        skip_chain: what a SkipAt block after a gap in ``skip_layers`` reads. ``'previous'`` (default, the paper's
            wording): the attention output of the block before it. ``'phi'`` (SkipAt's code): the output of the
            previous SkipAt block (its Phi), with the prefix tokens of the latest computed attention. The two agree
            for contiguous skips (the released 3..8).
        init_values: LayerScale init (None: no LayerScale).
        interpolate_antialias, interpolate_offset: position-embedding resizing as DINOv2 does it (bicubic; the
            offset form scales by (n + offset) / n, DINOv2 without registers uses 0.1, with registers 0).
        pad_mode: inputs whose sides are not a multiple of the patch: ``'center'`` zero-pads evenly on both
            sides (DINOv2's CenterPadding; the grid then covers the padded image), ``'corner'`` pads bottom and
            right, ``'resize'`` resizes bilinearly to the nearest multiple, ``'error'`` refuses them.
        fused_attn: use ``scaled_dot_product_attention`` (the explicit path runs when probabilities are asked).
        grad_checkpointing: recompute each block in the backward pass (same numbers, less memory); also
            :meth:`set_grad_checkpointing`.

    ``arch_kwargs`` holds the constructor arguments (native checkpoints record them).
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
        mlp_hidden_dim: Optional[int] = None,
        ffn_align: int = 8,
        act_layer: str = "gelu",
        qkv_bias: bool = True,
        init_values: Optional[float] = None,
        class_token: bool = True,
        num_register_tokens: int = 0,
        mask_token: bool = False,
        use_pos_embed: bool = True,
        rope: bool = False,
        rope_base: Optional[float] = 100.0,
        rope_min_period: Optional[float] = None,
        rope_max_period: Optional[float] = None,
        rope_normalize_coords: str = "separate",
        rope_shift_coords: Optional[float] = None,
        rope_jitter_coords: Optional[float] = None,
        rope_rescale_coords: Optional[float] = None,
        rope_periods_dtype: str = "fp32",
        norm_pre: bool = False,
        patch_bias: bool = True,
        drop_path_rate: float = 0.0,
        drop_path_uniform: bool = False,
        attn_drop_rate: float = 0.0,
        proj_drop_rate: float = 0.0,
        pos_drop_rate: float = 0.0,
        skip_layers: Iterable[int] = (),
        skip_mode: str = "parametric",
        skip_chain: str = "previous",
        interpolate_antialias: bool = False,
        interpolate_offset: float = 0.0,
        final_norm: bool = True,
        pad_mode: str = "center",
        fused_attn: bool = True,
        norm_eps: float = 1e-6,
        grad_checkpointing: bool = False,
    ) -> None:
        args = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        super().__init__()
        if arch not in ARCHS:
            raise UserError(f"unknown arch {arch!r}: use one of {sorted(ARCHS)} or pass embed_dim/depth/num_heads")
        a_dim, a_depth, a_heads, a_ffn = ARCHS[arch]
        embed_dim, depth = embed_dim or a_dim, depth or a_depth
        num_heads, ffn_layer = num_heads or a_heads, ffn_layer or a_ffn
        if pad_mode not in PAD_MODES:
            raise UserError(f"unknown pad_mode {pad_mode!r}: use one of {PAD_MODES}")
        skip_layers = sorted({int(i) % depth for i in skip_layers})
        if 0 in skip_layers:
            raise UserError("skip_layers contains block 0, which has no earlier attention to reuse: start at 1")
        if skip_chain not in SKIP_CHAINS:
            raise UserError(f"unknown skip_chain {skip_chain!r}: use one of {SKIP_CHAINS}")
        if num_register_tokens < 0:
            raise UserError(f"num_register_tokens must be >= 0, got {num_register_tokens}")
        if not use_pos_embed and not rope:
            raise UserError("use_pos_embed=False needs rope=True: the model would have no position information")
        args["skip_layers"] = list(skip_layers)
        args["img_size"] = list(img_size) if not isinstance(img_size, int) else img_size
        self.arch_kwargs = args

        self.embed_dim = self.num_features = embed_dim
        self.depth = depth
        self.num_heads = num_heads
        self.patch_size = patch_size
        self.grid_size = tuple(s // patch_size for s in _pair(img_size))
        self.num_register_tokens = num_register_tokens
        self.has_class_token = class_token
        self.num_prefix_tokens = int(class_token) + num_register_tokens
        self.skip_layers = tuple(skip_layers)
        self.skip_mode = skip_mode
        self.skip_chain = skip_chain
        self.interpolate_antialias = interpolate_antialias
        self.interpolate_offset = interpolate_offset
        self.pad_mode = pad_mode
        self.init_values = init_values
        self.grad_checkpointing = grad_checkpointing

        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim, bias=patch_bias)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if class_token else None
        self.reg_token = nn.Parameter(torch.zeros(1, num_register_tokens, embed_dim)) if num_register_tokens else None
        self.mask_token = nn.Parameter(torch.zeros(1, embed_dim)) if mask_token else None
        n_pos = self.grid_size[0] * self.grid_size[1]
        self.pos_embed = nn.Parameter(torch.zeros(1, n_pos, embed_dim)) if use_pos_embed else None
        self.rope_embed = RopePositionEmbedding(
            embed_dim // num_heads, base=rope_base, min_period=rope_min_period, max_period=rope_max_period,
            normalize_coords=rope_normalize_coords, shift_coords=rope_shift_coords, jitter_coords=rope_jitter_coords,
            rescale_coords=rope_rescale_coords, periods_dtype=rope_periods_dtype) if rope else None
        self.pos_drop = nn.Dropout(pos_drop_rate)
        self.norm_pre = nn.LayerNorm(embed_dim, eps=norm_eps) if norm_pre else nn.Identity()
        # plain Python (not torch.linspace(...).tolist()) so that building on the meta device works (FSDP)
        dpr = [drop_path_rate if drop_path_uniform else drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList(
            Block(
                embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio, mlp_hidden_dim=mlp_hidden_dim, ffn=ffn_layer,
                ffn_align=ffn_align, act_layer=act_layer, qkv_bias=qkv_bias, init_values=init_values,
                drop_path=dpr[i], attn_drop=attn_drop_rate, proj_drop=proj_drop_rate,
                skip=skip_mode if i in skip_layers else None, num_prefix_tokens=self.num_prefix_tokens,
                fused_attn=fused_attn, norm_eps=norm_eps,
            )
            for i in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps) if final_norm else nn.Identity()
        self._init_tokens_and_linears()  # the rest was just initialised by the layers' own constructors

    # ------------------------------------------------------------------ init
    @torch.no_grad()
    def init_weights(self) -> None:
        """Set every parameter and buffer (so a model built on the meta device and ``to_empty``-ed is usable):
        truncated-normal linears and position embedding (std 0.02, zero biases), tiny cls/register init (as DINOv2),
        zero mask token, PyTorch's default init for convolutions (patch embedding, SkipAt), LayerNorm weight 1 / bias
        0, LayerScale ``init_values``, RoPE periods recomputed."""
        self._init_tokens_and_linears()
        for m in self.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.LayerNorm, LayerScale, RopePositionEmbedding)):
                m.reset_parameters()

    @torch.no_grad()
    def _init_tokens_and_linears(self) -> None:
        if self.pos_embed is not None:
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for t in (self.cls_token, self.reg_token):
            if t is not None:
                nn.init.normal_(t, std=1e-6)
        if self.mask_token is not None:
            nn.init.zeros_(self.mask_token)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block's activations in the backward pass instead of storing them (outputs and gradients
        unchanged; dropout and drop-path draw the same numbers in the recomputation)."""
        self.grad_checkpointing = bool(enable)

    # ------------------------------------------------------------ embedding
    def _fit_input(self, x: Tensor) -> Tensor:
        H, W = x.shape[-2:]
        p = self.patch_size
        if H % p == 0 and W % p == 0:
            return x
        Hp, Wp = math.ceil(H / p) * p, math.ceil(W / p) * p
        if self.pad_mode == "error":
            raise UserError(f"input {H}x{W} is not a multiple of the patch size {p}: resize it or set pad_mode")
        if self.pad_mode == "resize":
            Hr, Wr = max(p, round(H / p) * p), max(p, round(W / p) * p)
            return F.interpolate(x, size=(Hr, Wr), mode="bilinear", align_corners=False)
        top, left = ((Hp - H) // 2, (Wp - W) // 2) if self.pad_mode == "center" else (0, 0)
        return F.pad(x, (left, Wp - W - left, top, Hp - H - top))

    def interpolate_pos_embed(self, hw: tuple[int, int]) -> Tensor:
        """Position embedding for a (h, w) patch grid: [1, h*w, C], resized bicubically from the stored grid."""
        if self.pos_embed is None:
            raise UserError("this model has no position-embedding table (use_pos_embed=False): it uses RoPE")
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

    def prepare_tokens(self, x: Tensor, masks: Optional[Tensor] = None) -> tuple[Tensor, tuple[int, int]]:
        """Image [B, 3, H, W] -> tokens [B, P + h*w, C] in ``[cls | registers | patches]`` order, and (h, w).

        Patch embedding (+ position embedding), the prefix tokens, dropout, then ``norm_pre`` over all tokens.
        ``masks`` [B, h*w] bool puts the mask token at masked patches (needs ``mask_token=True``).
        """
        if x.ndim != 4:
            raise UserError(f"RegViT expects images [B, C, H, W], got shape {tuple(x.shape)}")
        x = self.patch_embed(self._fit_input(x))  # [B, C, h, w]
        hw = (x.shape[2], x.shape[3])
        x = x.flatten(2).transpose(1, 2)  # [B, h*w, C]
        if masks is not None:
            if self.mask_token is None:
                raise UserError("masks given but the model has no mask token: build it with mask_token=True")
            x = torch.where(masks.reshape(x.shape[0], -1, 1).bool(), self.mask_token.to(x.dtype)[None], x)
        if self.pos_embed is not None:
            x = x + self.interpolate_pos_embed(hw)
        prefix = [t.expand(x.shape[0], -1, -1) for t in (self.cls_token, self.reg_token) if t is not None]
        if prefix and self.mask_token is not None and masks is None:
            # as DINOv3: the (unused) mask token takes part in the graph, so DDP sees a gradient for every parameter
            prefix[0] = prefix[0] + 0 * self.mask_token[:, None]
        return self.norm_pre(self.pos_drop(torch.cat(prefix + [x], dim=1))), hw

    def rope_tables(self, hw: tuple[int, int]) -> Optional[tuple[Tensor, Tensor]]:
        """RoPE (sin, cos) [h*w, head_dim] of an (h, w) grid, or None for a model without RoPE."""
        return None if self.rope_embed is None else self.rope_embed(hw)

    # -------------------------------------------------------------- forward
    def _norm_index(self, indices: Union[None, int, Sequence[int]]) -> list[int]:
        if indices is None:
            return [self.depth - 1]
        if isinstance(indices, int):  # last n blocks, as timm and DINOv2
            if not 1 <= indices <= self.depth:
                raise UserError(f"cannot take the last {indices} blocks of a depth-{self.depth} model")
            return list(range(self.depth - indices, self.depth))
        out = [i % self.depth if -self.depth <= i < self.depth else None for i in indices]
        if None in out or not out:
            raise UserError(f"block indices {list(indices)} out of range for depth {self.depth}")
        return out

    def _call_block(self, blk: Block, x: Tensor, hw: tuple[int, int], prev: Optional[Tensor], rope, return_attn: bool,
                    want_qkv: bool):
        fn = blk.forward_capture if want_qkv else blk  # the module call: hooks on blocks fire (forward_capture too)
        if self.grad_checkpointing and torch.is_grad_enabled():
            return checkpoint(fn, x, hw, prev, return_attn, rope=rope, use_reentrant=False)
        return fn(x, hw, prev, return_attn, rope=rope)

    def forward_blocks(
        self, x: Tensor, indices: Union[None, int, Sequence[int]] = None, capture: Sequence[str] = ("out",),
        masks: Optional[Tensor] = None,
    ) -> dict:
        """Run the blocks up to the last requested index and capture per-block tensors.

        ``capture`` names any of: ``'out'`` (block output tokens [B, N, C], no final norm), ``'attn'``
        (probabilities [B, heads, N, N]), ``'attn_out'`` (attention branch output [B, N, C]), ``'q'``, ``'k'``,
        ``'v'`` (per head [B, heads, N, head_dim]; RoPE already applied to q and k, as the attention uses them).
        Returns a dict of lists in index order plus ``'hw'``. Attention of a SkipAt block does not exist: asking for
        it raises.
        """
        idx = self._norm_index(indices)
        want = set(capture)
        unknown = want - {"out", "attn", "attn_out", "q", "k", "v"}
        if unknown:
            raise UserError(f"unknown capture {sorted(unknown)}: use out, attn, attn_out, q, k, v")
        if want & {"attn", "q", "k", "v"} and set(idx) & set(self.skip_layers):
            raise UserError(f"blocks {sorted(set(idx) & set(self.skip_layers))} are SkipAt blocks and compute "
                            "no attention: pick other indices")
        # masks only when given: subclasses (test-time registers) override prepare_tokens(x)
        x, hw = self.prepare_tokens(x) if masks is None else self.prepare_tokens(x, masks=masks)
        rope = self.rope_tables(hw)
        res: dict = {k: [] for k in capture}
        res["hw"] = hw
        prev = last_skip = None
        keep, want_qkv, want_attn = set(idx), bool(want & {"q", "k", "v"}), "attn" in want
        p, n = self.num_prefix_tokens, hw[0] * hw[1]
        for i in range(max(idx) + 1):  # indexing, not slicing: a ModuleList slice builds a new module per call
            blk, reuse = self.blocks[i], prev
            if blk.skip is not None and self.skip_chain == "phi" and last_skip is not None:
                reuse = torch.cat([prev[:, :p], last_skip[:, p : p + n], prev[:, p + n :]], dim=1)
            out = self._call_block(blk, x, hw, reuse, rope, want_attn and i in keep, want_qkv and i in keep)
            if want_qkv and i in keep:
                out, qkv = out
                for name, t in zip(("q", "k", "v"), qkv):
                    if name in want:
                        res[name].append(t)
            x, prev, probs = out
            if blk.skip is not None:
                last_skip = prev
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
            raise UserError(f"output_fmt must be 'NCHW' or 'NLC', got {output_fmt!r}")
        res = self.forward_blocks(x, indices, ("out",))
        (h, w), p = res["hw"], self.num_prefix_tokens
        maps, prefixes = [], []
        for t in res["out"]:
            t = self.norm(t) if norm else t
            patches = t[:, p : p + h * w]
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
            "x_norm_patchtokens": t[:, self.num_prefix_tokens : self.num_prefix_tokens + res["hw"][0] * res["hw"][1]],
            "x_prenorm": res["out"][-1],
            "hw": res["hw"],
        }

    def forward(self, x: Tensor) -> Tensor:
        """All tokens of the last block after the final norm: [B, P + h*w, C]."""
        return self.norm(self.forward_blocks(x, None, ("out",))["out"][-1])


def create_regvit(name: str, **overrides) -> RegViT:
    """Build a preset of ``PRESETS`` (e.g. ``'dinov2_vits14_reg4'``), with keyword overrides."""
    if name not in PRESETS:
        import difflib

        near = difflib.get_close_matches(name, PRESETS, n=1)
        raise UserError(f"unknown preset {name!r}" + (f" (did you mean {near[0]!r}?)" if near else "")
                        + f": use one of {', '.join(sorted(PRESETS))}")
    return RegViT(**{**PRESETS[name], **overrides})
