"""timm ViT weights in the layout of mmseg's ``VisionTransformer`` backbone (the benchmark's mmseg peer and its
equality test use it). A pure state-dict function; the converters *into* RegViT live in ``dense_adapters.nn.convert``
(this one could join them there)."""
from __future__ import annotations

import torch
from torch import Tensor

from ...errors import CheckpointMismatch


def timm_to_mmseg(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """State dict of a timm ``VisionTransformer`` built with ``no_embed_class=True`` and no registers -> mmseg
    ViT keys (as mmseg's ``vit2mmseg`` converter; mmseg embeds the cls token too, so its entry is zero)."""
    if "reg_token" in sd:
        raise CheckpointMismatch("mmseg's VisionTransformer has no register tokens: convert a model built with "
                                 "registers=0")
    out = {"cls_token": sd["cls_token"],
           "pos_embed": torch.cat([torch.zeros_like(sd["cls_token"]), sd["pos_embed"]], dim=1),
           "patch_embed.projection.weight": sd["patch_embed.proj.weight"],
           "patch_embed.projection.bias": sd["patch_embed.proj.bias"],
           "ln1.weight": sd["norm.weight"], "ln1.bias": sd["norm.bias"]}
    names = {"norm1": "ln1", "norm2": "ln2", "attn.qkv": "attn.attn.in_proj", "attn.proj": "attn.attn.out_proj",
             "mlp.fc1": "ffn.layers.0.0", "mlp.fc2": "ffn.layers.1"}
    for k, v in sd.items():
        if not k.startswith("blocks."):
            continue
        _, i, rest = k.split(".", 2)
        sub, kind = rest.rsplit(".", 1)
        new = names[sub]
        kind = {"attn.attn.in_proj": {"weight": "_weight", "bias": "_bias"}}.get(new, {}).get(kind, "." + kind)
        out[f"layers.{i}.{new}{kind}"] = v
    return out
