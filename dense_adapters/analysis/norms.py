"""Token norms per layer, split into cls / register / patch tokens, and high-norm outlier detection.

Darcet et al. ("Vision Transformers Need Registers") call a patch token an outlier when its norm is far above
the rest (norm > 150 for DINOv2 ViT-g). Norms here are taken on the residual stream (block outputs, before the
final norm), as Darcet et al. and Jiang et al. measure them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import torch
from torch import Tensor, nn

from ..errors import UserError


@dataclass
class LayerNorms:
    """Norms of the output tokens of one block for a batch of images.

    ``cls``: [B] (or None without a class token); ``registers``: [B, R] (R may be 0; test-time registers
    count as registers); ``patches``: [B, h, w].
    """

    layer: int
    cls: Optional[Tensor]
    registers: Tensor
    patches: Tensor

    @property
    def hw(self) -> tuple[int, int]:
        return tuple(self.patches.shape[-2:])


def split_prefix(tokens: Tensor, vit: nn.Module) -> tuple[Optional[Tensor], Tensor, Tensor]:
    """[B, N, ...] tokens -> (cls [B, ...] or None, registers [B, R, ...], patches [B, N - P, ...]).

    Slices only through ``vit.num_prefix_tokens`` and ``vit.has_class_token``.
    """
    p, c = vit.num_prefix_tokens, int(getattr(vit, "has_class_token", True))
    return (tokens[:, 0] if c else None), tokens[:, c:p], tokens[:, p:]


@torch.no_grad()
def token_norms(vit: nn.Module, images: Tensor, indices: Union[None, int, Sequence[int]] = None) -> list[LayerNorms]:
    """Norms of every output token of the blocks at ``indices`` (default: all blocks) for images [B, 3, H, W]."""
    if indices is None:
        indices = list(range(vit.depth))
    res = vit.forward_blocks(images, indices, capture=("out",))
    idx = vit._norm_index(indices)
    h, w = res["hw"]
    out = []
    for i, t in zip(idx, res["out"]):
        n = t.float().norm(dim=-1)  # [B, N]
        cls, reg, patches = split_prefix(n, vit)
        out.append(LayerNorms(i, cls, reg, patches.reshape(n.shape[0], h, w)))
    return out


def outlier_mask(patch_norms: Tensor, threshold: float = 150.0, relative: Optional[float] = None) -> Tensor:
    """Boolean mask of outlier patches, same shape as ``patch_norms`` [B, h, w].

    ``relative`` set: a patch is an outlier when its norm exceeds ``relative`` times the median patch norm of its
    own image; otherwise when it exceeds the absolute ``threshold``.
    """
    if relative is not None:
        if relative <= 0:
            raise UserError(f"relative threshold must be > 0, got {relative}")
        med = patch_norms.flatten(1).median(dim=1).values  # [B]
        return patch_norms > relative * med.view(-1, *([1] * (patch_norms.ndim - 1)))
    if threshold <= 0:
        raise UserError(f"threshold must be > 0, got {threshold}")
    return patch_norms > threshold


def _stats(x: Optional[Tensor]) -> dict:
    if x is None or x.numel() == 0:
        return {}
    x = x.flatten().float()
    return {"min": x.min().item(), "median": x.median().item(), "mean": x.mean().item(), "max": x.max().item()}


@dataclass
class NormSummary:
    """Per-layer statistics over a set of images (see :func:`summarize`)."""

    threshold: float
    relative: Optional[float]
    layers: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"threshold": self.threshold, "relative": self.relative, "layers": self.layers}


def summarize(norms: list[LayerNorms], threshold: float = 150.0, relative: Optional[float] = None,
              names: Optional[Sequence[str]] = None) -> NormSummary:
    """Statistics per layer: patch/cls/register norm stats, outlier fraction, outlier positions per image.

    Positions are (row, col) on each image's patch grid. ``norms`` may hold several batches of the same layer
    (images of different sizes): they are merged by layer index.
    """
    by_layer: dict[int, list[LayerNorms]] = {}
    for ln in norms:
        by_layer.setdefault(ln.layer, []).append(ln)
    summary = NormSummary(threshold, relative)
    for layer in sorted(by_layer):
        items = by_layer[layer]
        patch_flat = torch.cat([ln.patches.flatten() for ln in items])
        cls = [ln.cls for ln in items if ln.cls is not None]
        regs = torch.cat([ln.registers.flatten() for ln in items])
        n_out, positions, k = 0, [], 0
        for ln in items:
            mask = outlier_mask(ln.patches, threshold, relative)  # [B, h, w]
            n_out += int(mask.sum())
            for b in range(mask.shape[0]):
                rc = mask[b].nonzero().tolist()
                name = names[k] if names is not None and k < len(names) else str(k)
                positions.append({"image": name, "hw": list(ln.hw), "positions": rc})
                k += 1
        summary.layers.append({
            "layer": layer,
            "num_patches": patch_flat.numel(),
            "num_outliers": n_out,
            "outlier_fraction": n_out / max(1, patch_flat.numel()),
            "patch": _stats(patch_flat),
            "cls": _stats(torch.cat(cls) if cls else None),
            "registers": _stats(regs),
            "outliers": positions,
        })
    return summary
