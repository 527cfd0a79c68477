"""Meta's DINOv3 checkpoints (facebookresearch/dinov3 ``.pth``).

Keys: ``cls_token`` [1,1,D], ``storage_tokens`` [1,4,D], ``mask_token`` [1,D], ``patch_embed.proj``,
``rope_embed.periods`` (a persistent buffer, stored in bf16), ``blocks.i.{norm1, attn.qkv.{weight, bias, bias_mask},
attn.proj, ls1.gamma, norm2, mlp.{fc1,fc2 | w1,w2,w3}, ls2.gamma}``, ``norm``; 7B and the satellite ViT-L also carry
``local_cls_norm`` (used in training only).

``attn.qkv.bias_mask`` zeroes the K third of the qkv bias. Upstream allocates it uninitialised and fills it in
``init_weights`` (1, 0, 1 per third); a file written from a model that skipped that step holds NaN or garbage there.
The converter therefore never loads the mask: it applies it when it is a clean 0/1 mask, and otherwise applies the
mask every released model uses (K third zero), so no load path can leave NaN in the bias.
"""
from __future__ import annotations

from typing import Collection

import torch

from .common import StateDict, any_key, register_converter, require


def _masked_qkv_bias(bias: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    standard = torch.ones_like(bias)
    n = bias.shape[0]
    standard[n // 3 : 2 * n // 3] = 0
    if mask is not None and mask.shape == bias.shape and bool(torch.isfinite(mask).all()) and bool(
            ((mask == 0) | (mask == 1)).all()):
        return bias * mask.to(bias.dtype)
    return bias * standard


def convert_dinov3(sd: StateDict) -> StateDict:
    """DINOv3 -> RegViT: ``storage_tokens`` -> ``reg_token``; ``qkv.bias`` x ``bias_mask`` (see the module docstring);
    SwiGLU ``w1`` (gate), ``w2`` (value) -> packed ``fc1``, ``w3`` -> ``fc2``. ``rope_embed.periods`` is kept so that
    the loader can check the model's RoPE against it (then dropped)."""
    require(sd, ("cls_token", "patch_embed.proj.weight"), "DINOv3")
    out: StateDict = {}
    for k, v in sd.items():
        if k.endswith(".attn.qkv.bias_mask"):
            continue
        if k.endswith(".attn.qkv.bias"):
            v = _masked_qkv_bias(v, sd.get(k + "_mask"))
        out[k.replace("storage_tokens", "reg_token")] = v
    for k in [k for k in out if ".mlp.w1." in k]:
        w2, w3 = k.replace(".w1.", ".w2."), k.replace(".w1.", ".w3.")
        if w2 in out:
            out[k.replace(".w1.", ".fc1.")] = torch.cat([out.pop(k), out.pop(w2)], dim=0)
        if w3 in out:
            out[w3.replace(".w3.", ".fc2.")] = out.pop(w3)
    return out


def looks_like_dinov3(keys: Collection[str]) -> bool:
    return ("storage_tokens" in keys or "rope_embed.periods" in keys or any_key(keys, r"\.attn\.qkv\.bias_mask$")
            or (any_key(keys, r"^blocks\.\d+\.mlp\.w1\.") and any_key(keys, r"^blocks\.\d+\.ls1\.gamma$")))


register_converter("dinov3", convert_dinov3, looks_like_dinov3, "Meta DINOv3 .pth (storage_tokens, rope_embed)",
                   priority=40)
