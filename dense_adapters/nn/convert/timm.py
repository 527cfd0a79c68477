"""timm checkpoints: ``VisionTransformer`` (augreg, DeiT, ``vit_*_reg4_dinov2``), DeiT-III's own release, and the
``Eva`` layout of ``vit_*_patch16_dinov3[_qkvb]`` (RoPE, ``gamma_1``, split ``q_bias``/``v_bias``, SwiGLU
``fc1_g``/``fc1_x``). Also the plain RegViT (native) layout, which is timm's.
"""
from __future__ import annotations

import math
import re
from typing import Collection

import torch

from .common import StateDict, any_key, fold_prefix_pos, register_converter, square_prefix


def _is_eva(keys: Collection[str]) -> bool:
    """timm's Eva (the DINOv3 port): LayerScale as ``gamma_1``, no absolute position embedding."""
    return "pos_embed" not in keys and any_key(keys, r"^blocks\.\d+\.gamma_1$")


def _qkv_bias(sd: StateDict) -> StateDict:
    """``attn.q_bias`` + ``attn.v_bias`` -> one ``attn.qkv.bias`` with a zero K third (timm's fixed ``k_bias``); a
    fused ``qkv.weight`` without any bias gets a zero bias, which is what a bias-free attention computes."""
    out = dict(sd)
    for k in [k for k in sd if k.endswith(".attn.qkv.weight")]:
        p = k[: -len("qkv.weight")]
        if p + "q_bias" in sd and p + "v_bias" in sd:
            q, v = out.pop(p + "q_bias"), out.pop(p + "v_bias")
            out[p + "qkv.bias"] = torch.cat([q, torch.zeros_like(q), v])
        elif p + "qkv.bias" not in sd:
            out[p + "qkv.bias"] = torch.zeros(sd[k].shape[0], dtype=sd[k].dtype)
    return out


def _pack_swiglu(sd: StateDict) -> StateDict:
    """timm ``SwiGLU`` (``fc1_g`` gate, ``fc1_x`` value, ``fc2``) -> the packed ``fc1`` = [gate; value] of RegViT."""
    out = dict(sd)
    for k in [k for k in sd if ".mlp.fc1_g." in k]:
        x = k.replace(".fc1_g.", ".fc1_x.")
        if x in sd:
            out[k.replace(".fc1_g.", ".fc1.")] = torch.cat([out.pop(k), out.pop(x)], dim=0)
    return out


def convert_timm(sd: StateDict) -> StateDict:
    """timm ``VisionTransformer`` / ``Eva`` (dinov3) / DeiT-III / RegViT state dict -> RegViT names.

    ``gamma_1/2`` -> ``ls1/2.gamma``; Eva's split q/v bias -> ``qkv.bias`` (K third zero; the plain ``_dinov3``
    variants have no qkv bias at all and get an all-zero one); ``fc1_g``/``fc1_x`` -> packed ``fc1``; the
    position-embedding entries of prefix tokens (if any) are folded into the tokens.
    """
    sd = dict(sd)
    sd = {re.sub(r"\.gamma_([12])$", r".ls\1.gamma", k): v for k, v in sd.items()}
    sd = _pack_swiglu(_qkv_bias(sd))
    if "pos_embed" in sd:
        n_prefix = sum(sd[k].shape[1] for k in ("cls_token", "reg_token") if k in sd)
        sd = fold_prefix_pos(sd, square_prefix(sd["pos_embed"].shape[1], (0, n_prefix) if n_prefix else (0,)))
    return sd


def convert_deit3(sd: StateDict) -> StateDict:
    """DeiT-III (facebookresearch/deit ``deit_3_*``: ``blocks.i.gamma_1/2``, patch-only ``pos_embed``) -> RegViT."""
    return convert_timm(sd)


def looks_like_timm(keys: Collection[str]) -> bool:
    return "patch_embed.proj.weight" in keys and any_key(keys, r"^blocks\.\d+\.attn\.qkv\.weight$")


def looks_like_deit3(keys: Collection[str]) -> bool:
    return looks_like_timm(keys) and "pos_embed" in keys and any_key(keys, r"^blocks\.\d+\.gamma_1$")


def looks_like_native(keys: Collection[str]) -> bool:
    """A RegViT state dict timm could not have written: SkipAt Phi, RoPE (no pos_embed) with ``ls1.gamma``, a norm
    before the blocks together with registers, or a mask token beside a patch-only position embedding."""
    if not looks_like_timm(keys):
        return False
    if any_key(keys, r"\.skip_fn\.") or ("pos_embed" not in keys and not _is_eva(keys)):
        return True
    if "mask_token" in keys and "pos_embed" in keys and hasattr(keys, "__getitem__"):
        n = keys["pos_embed"].shape[1]  # type: ignore[index]
        return math.isqrt(n) ** 2 == n
    return False


def convert_native(sd: StateDict) -> StateDict:
    """A RegViT checkpoint (e.g. saved by mmengine under 'state_dict' with a 'backbone.vit.' prefix): unchanged."""
    return dict(sd)


register_converter("deit3", convert_deit3, looks_like_deit3, "DeiT-III release (gamma_1/gamma_2)", family="timm",
                   priority=60)
register_converter("native", convert_native, looks_like_native, "dense-adapters RegViT", family="timm", priority=65)
register_converter("timm", convert_timm, looks_like_timm,
                   "timm VisionTransformer / vit_*_dinov3 (Eva) / vit_*_reg4_dinov2", family="timm", priority=70)
