"""Depth losses on log depth: scale-invariant log loss and multi-scale gradient matching.

Both take ``pred`` and ``target`` depth maps [B, 1, H, W] in metres of the same size; pixels count only where
``min_depth < target <= max_depth`` (0 marks missing ground truth in NYU's PNGs and in mmseg's padding).

Why not mmseg's ``SiLogLoss``: its formula is ``sqrt(mean(g^2) - 0.5 * mean(g)^2)`` per image with the weight
0.5 fixed and only ``target > eps`` masked (padding filled with ``seg_pad_val`` = 255 m would count). AdaBins,
BTS and DINOv2's depth heads use ``variance_focus`` 0.85 (DINOv2 writes it ``var(g) + 0.15 * mean(g)^2``) over all
valid pixels of the batch. :class:`SILogLoss` covers both (``variance_focus=0.5, reduction='image'`` gives mmseg's
numbers; tests check it).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from ...registry import MODELS


def valid_depth_mask(target: Tensor, min_depth: float = 0.0, max_depth: Optional[float] = None) -> Tensor:
    """Bool mask of pixels with ground truth: ``min_depth < target (<= max_depth)``; NaN targets are invalid."""
    mask = target > min_depth
    if max_depth is not None:
        mask &= target <= max_depth
    return mask


def _check_pair(pred: Tensor, target: Tensor, name: str) -> None:
    if pred.shape != target.shape or pred.ndim != 4 or pred.shape[1] != 1:
        raise ValueError(f"{name} expects pred and target [B, 1, H, W] of one shape, got {tuple(pred.shape)} "
                         f"and {tuple(target.shape)}: resize the prediction to the ground truth first")


def silog_loss(pred: Tensor, target: Tensor, mask: Tensor, variance_focus: float = 0.85, reduction: str = "batch",
               eps: float = 1e-6) -> Tensor:
    """``sqrt(mean(g^2) - variance_focus * mean(g)^2)``, ``g = log(pred) - log(target)`` over ``mask``.

    ``reduction='batch'`` pools the valid pixels of the whole batch (AdaBins / DINOv2); ``'image'`` takes the
    loss per image and averages over the images that have valid pixels (mmseg's ``SiLogLoss``). With no valid
    pixel at all the loss is 0 (still connected to ``pred`` so that backward works).
    """
    g = torch.log(pred.clamp(min=eps)) - torch.log(target.clamp(min=eps))  # [B, 1, H, W]
    g = torch.where(mask, g, torch.zeros_like(g))
    m = mask.to(g.dtype)
    if reduction == "batch":
        n = m.sum()
        if n == 0:
            return pred.sum() * 0.0
        d = (g.square().sum() / n - variance_focus * (g.sum() / n).square()).clamp(min=0.0)
        return torch.sqrt(d + 1e-12)
    if reduction != "image":
        raise ValueError(f"reduction must be 'batch' or 'image', got {reduction!r}")
    n = m.flatten(1).sum(1)  # [B]
    keep = n > 0
    if not keep.any():
        return pred.sum() * 0.0
    n = n.clamp(min=1.0)
    d = g.square().flatten(1).sum(1) / n - variance_focus * (g.flatten(1).sum(1) / n).square()
    return torch.sqrt(d.clamp(min=0.0) + 1e-12)[keep].mean()


def gradient_matching_loss(pred: Tensor, target: Tensor, mask: Tensor, scales: int = 4, eps: float = 1e-6) -> Tensor:
    """Multi-scale gradient matching on ``R = log(pred) - log(target)`` (MegaDepth, Li & Snavely 2018).

    At scale ``k`` (maps subsampled with stride ``2**k``) the loss adds
    ``sum(|R[y, x+1] - R[y, x]| + |R[y+1, x] - R[y, x]|) / n_k`` over neighbour pairs whose two pixels are valid,
    ``n_k`` being the number of valid pixels at that scale (pooled over the batch). Scales without a valid pixel
    add nothing.
    """
    r = torch.log(pred.clamp(min=eps)) - torch.log(target.clamp(min=eps))  # [B, 1, H, W]
    r = torch.where(mask, r, torch.zeros_like(r))
    total = pred.sum() * 0.0
    for k in range(scales):
        s = 2 ** k
        rk, mk = r[..., ::s, ::s], mask[..., ::s, ::s]
        n = mk.sum()
        if n == 0:
            continue
        gx = (rk[..., :, 1:] - rk[..., :, :-1]).abs() * (mk[..., :, 1:] & mk[..., :, :-1])
        gy = (rk[..., 1:, :] - rk[..., :-1, :]).abs() * (mk[..., 1:, :] & mk[..., :-1, :])
        total = total + (gx.sum() + gy.sum()) / n
    return total


class _DepthLoss(nn.Module):
    """Common arguments: depth range of valid ground truth, weight and the name mmseg logs the loss under."""

    def __init__(self, min_depth: float = 1e-3, max_depth: Optional[float] = None, loss_weight: float = 1.0,
                 loss_name: str = "loss_depth") -> None:
        super().__init__()
        if not loss_name.startswith("loss_"):
            raise ValueError(f"loss_name must start with 'loss_' (mmengine only back-propagates those), "
                             f"got {loss_name!r}")
        self.min_depth, self.max_depth = min_depth, max_depth
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    @property
    def loss_name(self) -> str:
        return self._loss_name


@MODELS.register_module()
class SILogLoss(_DepthLoss):
    """Scale-invariant log loss (Eigen et al. 2014) as a module (``type='dense_adapters.SILogLoss'``).

    Args:
        variance_focus: the lambda of ``mean(g^2) - lambda * mean(g)^2``; 0.85 as AdaBins/BTS/DINOv2, 0.5 as
            Eigen's paper and mmseg's ``SiLogLoss``, 1 is the plain variance (fully scale invariant).
        reduction: ``'batch'`` (pixels of the whole batch pooled) or ``'image'`` (mean of per-image losses).
        min_depth, max_depth: ground truth outside ``(min_depth, max_depth]`` is ignored.
    """

    def __init__(self, variance_focus: float = 0.85, reduction: str = "batch", min_depth: float = 1e-3,
                 max_depth: Optional[float] = None, loss_weight: float = 1.0, loss_name: str = "loss_silog") -> None:
        super().__init__(min_depth, max_depth, loss_weight, loss_name)
        if reduction not in ("batch", "image"):
            raise ValueError(f"reduction must be 'batch' or 'image', got {reduction!r}")
        if not 0.0 <= variance_focus <= 1.0:
            raise ValueError(f"variance_focus must lie in [0, 1], got {variance_focus}")
        self.variance_focus, self.reduction = variance_focus, reduction

    def forward(self, pred: Tensor, target: Tensor, **kwargs) -> Tensor:
        _check_pair(pred, target, "SILogLoss")
        mask = valid_depth_mask(target, self.min_depth, self.max_depth)
        return self.loss_weight * silog_loss(pred, target, mask, self.variance_focus, self.reduction)


@MODELS.register_module()
class GradientMatchingLoss(_DepthLoss):
    """Multi-scale log-depth gradient matching (``type='dense_adapters.GradientMatchingLoss'``).

    DINOv2 weights it 0.5 next to its SigLoss. Unlike DINOv2's ``GradientLoss``, which slices its 4-D inputs as
    if they were 2-D (so it differences and subsamples across the batch and channel axes), this one works on H
    and W of every image.
    """

    def __init__(self, scales: int = 4, min_depth: float = 1e-3, max_depth: Optional[float] = None,
                 loss_weight: float = 1.0, loss_name: str = "loss_grad") -> None:
        super().__init__(min_depth, max_depth, loss_weight, loss_name)
        if scales < 1:
            raise ValueError(f"scales must be >= 1, got {scales}")
        self.scales = scales

    def forward(self, pred: Tensor, target: Tensor, **kwargs) -> Tensor:
        _check_pair(pred, target, "GradientMatchingLoss")
        mask = valid_depth_mask(target, self.min_depth, self.max_depth)
        return self.loss_weight * gradient_matching_loss(pred, target, mask, self.scales)


__all__: Sequence[str] = ("SILogLoss", "GradientMatchingLoss", "silog_loss", "gradient_matching_loss",
                          "valid_depth_mask")
