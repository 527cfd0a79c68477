"""Models with a known artifact, built by hand, to check the analysis tools against a ground truth.

:func:`plant_register_neuron` wires one MLP neuron so that it fires only at chosen patch positions and writes a large
vector there: those positions become high-norm outlier tokens from that block on, as in Darcet et al.'s models,
and the neuron is, by construction, the register neuron of Jiang et al. Several plants may share a block (different
``gain``: different activations) or use other blocks and marker channels. :func:`plant_dense_neuron` adds the
decoy Jiang et al.'s sparsity filter exists for: a neuron active at every token.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..errors import UserError
from ..nn.vit import RegViT


@torch.no_grad()
def plant_register_neuron(
    vit: RegViT,
    block: int,
    neuron: int,
    positions: Sequence[tuple[int, int]],
    strength: float = 400.0,
    channel: int = 0,
    seed: int = 0,
    gain: float = 4.0,
    avoid_channels: Sequence[int] = (),
) -> dict:
    """Make ``blocks[block].mlp`` neuron ``neuron`` write a vector of norm ~``strength`` at grid ``positions``.

    A marker channel is zeroed in the patch embedding and set to a large value in the position embedding at the
    planted (row, col) cells of the stored grid ``vit.grid_size`` (inputs must have that grid for exact positions).
    The neuron reads the marker after the block's norm2 and fires only above a threshold; its fc2 column writes a
    random unit direction (zero on ``avoid_channels``: keep other plants' marker channels clean). ``gain`` scales
    the neuron's activation at the planted cells (~``gain`` x 3.4 for ``embed_dim`` 32); the written norm stays
    ~``strength``. Returns ``{'block', 'neuron', 'positions', 'direction', 'activation'}``.
    """
    gh, gw = vit.grid_size
    for r, c in positions:
        if not (0 <= r < gh and 0 <= c < gw):
            raise UserError(f"position {(r, c)} is outside the stored {gh}x{gw} patch grid")
    blk = vit.blocks[block]
    mlp = blk.mlp
    if not isinstance(mlp.act, nn.GELU) or mlp.fc1.out_features != mlp.fc2.in_features:
        raise TypeError("plant_register_neuron needs a GELU Mlp (ffn_layer='mlp')")
    C = vit.embed_dim
    vit.patch_embed.proj.weight[channel] = 0
    if vit.patch_embed.proj.bias is not None:  # CLIP-style patch embeddings have none
        vit.patch_embed.proj.bias[channel] = 0
    vit.pos_embed[0, :, channel] = 0
    marker = 2.0 * C**0.5  # dominates the token: LayerNorm maps it to ~sqrt(C) at the planted cells
    for r, c in positions:
        vit.pos_embed[0, r * gw + c, channel] = marker
    # norm2 may be anything: read the marker through its affine map
    g = blk.norm2.weight[channel].item() or 1.0
    thr = 0.3 * C**0.5  # fires where LN(x)[channel] > thr (only the planted cells)
    mlp.fc1.weight[neuron] = 0
    mlp.fc1.weight[neuron, channel] = gain / g
    mlp.fc1.bias[neuron] = -gain * thr - gain * blk.norm2.bias[channel].item() / g
    direction = torch.randn(C, generator=torch.Generator().manual_seed(seed))
    direction[list(avoid_channels)] = 0
    direction /= direction.norm()
    expected_act = gain * (C**0.5 * 0.9 - thr)  # rough activation at a planted cell
    ls = getattr(blk.ls2, "gamma", None)
    scale = torch.ones(C) if ls is None else 1.0 / ls.detach().clamp_min(1e-8)
    mlp.fc2.weight[:, neuron] = direction * strength / expected_act * scale
    return {"block": block, "neuron": neuron, "positions": [tuple(p) for p in positions], "direction": direction,
            "activation": expected_act}


@torch.no_grad()
def plant_dense_neuron(vit: RegViT, block: int, neuron: int, value: float = 50.0) -> dict:
    """Make ``blocks[block].mlp`` neuron ``neuron`` output ~``value`` at every token, and write nothing.

    A dense neuron with a large activation everywhere, also at the outliers: ranked by mean |activation| at the
    outlier positions alone it comes first, although it has nothing to do with them. Returns ``{'block', 'neuron'}``.
    """
    mlp = vit.blocks[block].mlp
    if not isinstance(mlp.act, nn.GELU):
        raise TypeError("plant_dense_neuron needs a GELU Mlp (ffn_layer='mlp')")
    mlp.fc1.weight[neuron] = 0
    mlp.fc1.bias[neuron] = value  # GELU(value) = value for a large value
    mlp.fc2.weight[:, neuron] = 0
    return {"block": block, "neuron": neuron}
