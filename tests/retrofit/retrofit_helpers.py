"""Tiny teachers with random but fixed weights for the retrofit tests (imported by name: unique in tests/)."""
import math

import torch

# RegViT with 2 registers: 64x64 inputs, patch 8 -> an 8x8 grid (64 tokens: enough for SkipAt to save FLOPs)
VIT_KW = dict(arch="small", embed_dim=32, depth=4, num_heads=2, patch_size=8, img_size=64, init_values=0.5,
              num_register_tokens=2)
SIZE = 64


def active_vit(seed: int = 0, share: float = 0.8, **arch):
    """A random ViT whose blocks matter: unit-gain linears (std 1/sqrt(fan_in)) and sharpened queries/keys, so that
    attention is content-dependent and every block changes the features (the default init, std 0.02, leaves the
    residual stream nearly untouched and makes any retrofit look perfect). Adjacent blocks' attention weights are
    correlated (``share``), as trained ViTs' adjacent attention is (SkipAt's premise): with independent random
    blocks an attention output would be unpredictable from the previous one. ``arch``: RegViT arguments instead
    of ``VIT_KW``."""
    from dense_adapters.nn import RegViT

    torch.manual_seed(seed)
    vit = RegViT(**(arch or VIT_KW))
    with torch.no_grad():
        for m in vit.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.normal_(0, 1 / math.sqrt(m.in_features))
        d = vit.embed_dim
        for blk in vit.blocks:
            blk.attn.qkv.weight[: 2 * d] *= 2.0
        for prev, blk in zip(vit.blocks[:-1], vit.blocks[1:]):
            for a, b in ((prev.attn.qkv, blk.attn.qkv), (prev.attn.proj, blk.attn.proj)):
                b.weight.copy_(share * a.weight + math.sqrt(1 - share**2) * b.weight)
        for t in (vit.pos_embed, vit.reg_token, vit.cls_token):  # no pos_embed in a RoPE model
            if t is not None:
                t.normal_(0, 0.5 if t is vit.pos_embed else 1.0)
    return vit.eval()


# Uformer with 2 levels: 32x32 inputs, 4x4 windows
UFORMER_KW = dict(embed_dim=8, depths=(1, 1, 1, 1, 1), win_size=4)


def active_uformer(seed: int = 0):
    """A random plain Uformer whose window attention matters (unit-gain linears, sharpened queries/keys)."""
    from dense_adapters.nn import Uformer

    torch.manual_seed(seed)
    net = Uformer(**UFORMER_KW)
    with torch.no_grad():
        for name, m in net.named_modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.normal_(0, 1 / math.sqrt(m.in_features))
                if name.endswith("attn.qkv"):
                    m.weight[: 2 * m.in_features] *= 2.0
    return net.eval()
