"""OpenCLIP image towers (``open_clip.model.VisionTransformer``: ViT-B/16, ViT-L/14, ... and OpenAI's CLIP weights).

Keys (under ``visual.`` in a full CLIP checkpoint, bare in an image-tower state dict): ``conv1.weight`` (no bias),
``class_embedding`` [D], ``positional_embedding`` [1 + N, D], ``ln_pre``, ``transformer.resblocks.i.{ln_1,
attn.in_proj_weight, attn.in_proj_bias, attn.out_proj, ln_2, mlp.c_fc, mlp.c_proj[, ls_1.gamma, ls_2.gamma]}``,
``ln_post``, ``proj``. ``ln_pre`` becomes RegViT's ``norm_pre`` (applied to all tokens after the prefix concat and
the position embedding, as OpenCLIP and timm do), ``ln_post`` the final ``norm``; the text tower and ``proj`` are
known-droppable. timm-trunk towers (``visual.trunk.``) are timm ViTs and go through the timm converter.
"""
from __future__ import annotations

import re
from typing import Collection

from .common import StateDict, any_key, fold_prefix_pos, register_converter, require, zero_bias_if_absent
from .timm import convert_timm

_BLOCK = [
    (r"ln_1\.", "norm1."), (r"ln_2\.", "norm2."),
    (r"attn\.in_proj_weight$", "attn.qkv.weight"), (r"attn\.in_proj_bias$", "attn.qkv.bias"),
    (r"attn\.out_proj\.", "attn.proj."), (r"mlp\.c_fc\.", "mlp.fc1."), (r"mlp\.c_proj\.", "mlp.fc2."),
    (r"ls_1\.gamma$", "ls1.gamma"), (r"ls_2\.gamma$", "ls2.gamma"),
]


def convert_openclip(sd: StateDict) -> StateDict:
    """OpenCLIP / OpenAI CLIP image tower -> RegViT (needs ``norm_pre=True``: see the ``openclip_*`` presets)."""
    if any(k.startswith("visual.trunk.") for k in sd):
        trunk = {k[len("visual.trunk."):]: v for k, v in sd.items() if k.startswith("visual.trunk.")}
        rest = {k: v for k, v in sd.items() if not k.startswith("visual.trunk.")}
        return {**rest, **convert_timm(trunk)}
    visual = "visual." if any(k.startswith("visual.") for k in sd) else ""
    out: StateDict = {}
    for k, v in sd.items():
        if visual and not k.startswith(visual):
            out[k] = v  # text tower etc.: kept under its own name (known-droppable)
            continue
        k = k[len(visual):]
        m = re.match(r"^transformer\.resblocks\.(\d+)\.(.*)$", k)
        if m:
            rest = m.group(2)
            for pat, rep in _BLOCK:
                if re.match(pat, rest):
                    rest = re.sub("^" + pat, rep, rest)
                    break
            out[f"blocks.{m.group(1)}.{rest}"] = v
        elif k == "conv1.weight":
            out["patch_embed.proj.weight"] = v
        elif k == "class_embedding":
            out["cls_token"] = v.reshape(1, 1, -1)
        elif k == "positional_embedding":
            out["pos_embed"] = v.reshape(1, -1, v.shape[-1])
        elif k.startswith(("ln_pre.", "ln_post.")):
            out[k.replace("ln_pre.", "norm_pre.").replace("ln_post.", "norm.")] = v
        else:
            out[(visual + k) if k == "proj" else k] = v
    require(out, ("cls_token", "pos_embed", "patch_embed.proj.weight"), "OpenCLIP image tower")
    zero_bias_if_absent(out, "patch_embed.proj.weight")  # conv1 has no bias
    return fold_prefix_pos(out, 1)


def looks_like_openclip(keys: Collection[str]) -> bool:
    return (any_key(keys, r"^(visual\.)?class_embedding$") or any_key(keys, r"^(visual\.)?transformer\.resblocks\.")
            or "visual.conv1.weight" in keys or any_key(keys, r"^visual\.trunk\."))


register_converter("openclip", convert_openclip, looks_like_openclip, "OpenCLIP / OpenAI CLIP image tower",
                   priority=20)
