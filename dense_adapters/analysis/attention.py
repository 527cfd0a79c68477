"""Attention of the prefix tokens (cls and registers) over the patch grid."""
from __future__ import annotations

from typing import Sequence, Union

import torch
from torch import Tensor, nn

from ..errors import UserError


@torch.no_grad()
def prefix_attention(vit: nn.Module, images: Tensor, indices: Union[None, int, Sequence[int]] = None) -> dict:
    """Attention probabilities of every prefix token (cls, registers) to the patches, per head.

    Returns ``{'maps': [ [B, P, heads, h, w] per index ], 'probs': [ [B, heads, N, N] per index ],
    'hw': (h, w), 'labels': ['cls', 'reg0', ..., 'tt0', ...]}`` (tt: test-time registers). Each full row of
    ``probs`` sums to 1; ``maps`` keeps only the patch columns (a row of ``maps`` sums to 1 minus the attention
    to prefix tokens).
    """
    res = vit.forward_blocks(images, indices, capture=("attn",))
    (h, w), p = res["hw"], vit.num_prefix_tokens
    maps = []
    for a in res["attn"]:  # [B, heads, N, N]
        m = a[:, :, :p, p:]  # [B, heads, P, h*w]
        maps.append(m.permute(0, 2, 1, 3).reshape(a.shape[0], p, a.shape[1], h, w))
    c = int(getattr(vit, "has_class_token", True))
    tt = int(getattr(vit, "num_test_time_registers", 0))
    labels = (["cls"] if c else []) + [f"reg{i}" for i in range(p - c - tt)] + [f"tt{i}" for i in range(tt)]
    return {"maps": maps, "probs": res["attn"], "hw": (h, w), "labels": labels}


def cls_attention_features(attn: Tensor, vit: nn.Module) -> Tensor:
    """Attention of the cls token to the patches, heads flattened: [B, heads, N, N] -> [B, heads * (N - P)]."""
    if not getattr(vit, "has_class_token", True):
        raise UserError("cls attention maps need a model with a class token")
    return attn[:, :, 0, vit.num_prefix_tokens:].flatten(1)
