"""``--skip auto``: the blocks whose attention output is most like the previous block's (adjacent-block CKA).

The same measurement as ``tools/analysis/layer_similarity.py``'s ``attn_out`` matrix: linear CKA of attention-branch
outputs (tokens x channels, flattened per example), estimated over mini-batches with the unbiased HSIC of
:class:`dense_adapters.analysis.cka.MinibatchCKA`. A block whose output is well predicted by its predecessor's is
the one a function of that predecessor's output can stand in for. Block 0 cannot skip; the last block is not
offered either, because its output is what every head reads and no later block can correct an error there.
"""
from __future__ import annotations

from typing import Iterable, Optional

import torch
from torch import Tensor

from ..analysis.cka import MinibatchCKA
from ..errors import DataError, UserError
from ..nn import RegViT


@torch.no_grad()
def adjacent_attn_cka(vit: RegViT, batches: Iterable[Tensor]) -> list[float]:
    """CKA(a_{i-1}, a_i) for i = 1 .. depth-1 (a list of depth - 1 values; NaN where undefined)."""
    acc = MinibatchCKA()
    blocks = list(range(vit.depth))
    for x in batches:
        acc.update(vit.forward_blocks(x, blocks, capture=("attn_out",))["attn_out"])
    if acc.num_batches == 0:
        raise DataError("no batch of >= 4 images to measure layer similarity on: add images or lower --num-skip")
    m = acc.compute()
    return [float(m[i - 1, i]) for i in range(1, vit.depth)]


def choose_skips(adjacent: list[float], num_skip: int, candidates: Optional[Iterable[int]] = None) -> list[int]:
    """The ``num_skip`` blocks with the highest adjacent CKA among ``candidates`` (default 1 .. depth-2)."""
    depth = len(adjacent) + 1
    cand = sorted(set(candidates) if candidates is not None else range(1, depth - 1))
    if not 1 <= num_skip <= len(cand):
        raise UserError(f"--num-skip {num_skip}: choose between 1 and {len(cand)} (blocks 1..{depth - 2} of a "
                        f"{depth}-block model can skip)")
    score = {i: (adjacent[i - 1] if adjacent[i - 1] == adjacent[i - 1] else -1.0) for i in cand}  # NaN last
    return sorted(sorted(cand, key=lambda i: (-score[i], i))[:num_skip])
