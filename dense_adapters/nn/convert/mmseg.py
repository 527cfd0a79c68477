"""mmsegmentation-format ViT checkpoints (``mmseg.models.backbones.VisionTransformer``, e.g. from its
``vit2mmseg`` converter or an mmseg training run): ``patch_embed.projection``, ``cls_token``, ``pos_embed`` [1, 1+N, D],
``layers.i.{ln1, attn.attn.in_proj_weight/bias, attn.attn.out_proj, ln2, ffn.layers.0.0, ffn.layers.1}``, ``ln1``
(the final norm) and, with ``pre_norm=True``, ``ln_pre``.
"""
from __future__ import annotations

import re
from typing import Collection

from .common import StateDict, any_key, fold_prefix_pos, register_converter, require, zero_bias_if_absent

_BLOCK = [
    (r"ln1\.", "norm1."), (r"ln2\.", "norm2."),
    (r"attn\.attn\.in_proj_weight$", "attn.qkv.weight"), (r"attn\.attn\.in_proj_bias$", "attn.qkv.bias"),
    (r"attn\.attn\.out_proj\.", "attn.proj."), (r"ffn\.layers\.0\.0\.", "mlp.fc1."), (r"ffn\.layers\.1\.", "mlp.fc2."),
    (r"ffn\.gamma2\.weight$", "ls2.gamma"), (r"attn\.gamma1\.weight$", "ls1.gamma"),
]


def convert_mmseg(sd: StateDict) -> StateDict:
    """mmseg ViT -> RegViT (mmseg applies its final ``ln1`` only after the last block, RegViT's ``norm`` likewise
    after whichever block is read)."""
    require(sd, ("cls_token", "pos_embed", "patch_embed.projection.weight"), "mmseg ViT")
    out: StateDict = {}
    for k, v in sd.items():
        m = re.match(r"^layers\.(\d+)\.(.*)$", k)
        if m:
            rest = m.group(2)
            for pat, rep in _BLOCK:
                if re.match(pat, rest):
                    rest = re.sub("^" + pat, rep, rest)
                    break
            k = f"blocks.{m.group(1)}.{rest}"
        else:
            k = re.sub(r"^patch_embed\.projection\.", "patch_embed.proj.", k)
            k = re.sub(r"^ln_pre\.", "norm_pre.", re.sub(r"^ln1\.", "norm.", k))
        out[k] = v
    zero_bias_if_absent(out, "patch_embed.proj.weight")  # mmseg's default patch_bias=False
    return fold_prefix_pos(out, 1)  # mmseg's pos_embed always holds the cls entry (1 + h*w)


def looks_like_mmseg(keys: Collection[str]) -> bool:
    return any_key(keys, r"^layers\.\d+\.(ln1|attn\.attn\.|ffn\.layers\.)") or "patch_embed.projection.weight" in keys


register_converter("mmseg", convert_mmseg, looks_like_mmseg, "mmsegmentation VisionTransformer", priority=30)
