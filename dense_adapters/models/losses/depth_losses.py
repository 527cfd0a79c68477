"""Depth losses on log depth: scale-invariant log loss and multi-scale gradient matching.

Both take ``pred`` and ``target`` depth maps [B, 1, H, W] in metres of the same size; pixels count only where
``min_depth < target <= max_depth`` (0 marks missing ground truth in NYU's PNGs and in mmseg's padding).

Why not mmseg's ``SiLogLoss``: its formula is ``sqrt(mean(g^2) - 0.5 * mean(g)^2)`` per image with the weight
0.5 fixed and only ``target > eps`` masked (padding filled with ``seg_pad_val`` = 255 m would count). AdaBins,
BTS and DINOv2's depth heads use ``variance_focus`` 0.85 (DINOv2 writes it ``var(g) + 0.15 * mean(g)^2``) over all
valid pixels of the batch. :class:`SILogLoss` covers both (``variance_focus=0.5, reduction='image'`` gives mmseg's
numbers; tests check it), and with ``log_offset=1e-3, unbiased=True, warmup_iters=100`` it is DINOv2's and
DINOv3's ``SigLoss`` exactly (``eval/depth/models/losses/sigloss.py``, ``dinov3/eval/depth/loss.py``).

:class:`GradientMatchingLoss` has three variants: ``'adjacent'`` (this toolkit's: neighbouring pixels at strides
1, 2, 4, 8), ``'dinov3'`` (DINOv3's ``GradientLogLoss``: pixels 2 apart at strides 1, 2, 4, 6) and ``'dinov2'``
(DINOv2's ``GradientLoss`` as written: it slices and differences its [B, 1, H, W] inputs along the batch and channel
axes, so it is exactly 0 with 2 images per GPU, as in DINOv2's runs, and mixes images with more).
"""
from __future__ import annotations

import warnings
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from ...errors import UserError
from ...registry import MODELS


def valid_depth_mask(target: Tensor, min_depth: float = 0.0, max_depth: Optional[float] = None) -> Tensor:
    """Bool mask of pixels with ground truth: ``min_depth < target (<= max_depth)``; NaN targets are invalid."""
    mask = target > min_depth
    if max_depth is not None:
        mask &= target <= max_depth
    return mask


def _check_pair(pred: Tensor, target: Tensor, name: str) -> None:
    if pred.shape != target.shape or pred.ndim != 4 or pred.shape[1] != 1:
        raise UserError(f"{name} expects pred and target [B, 1, H, W] of one shape, got {tuple(pred.shape)} "
                        f"and {tuple(target.shape)}: resize the prediction to the ground truth first")


def _log_ratio(pred: Tensor, target: Tensor, log_offset: float = 0.0, eps: float = 1e-6) -> Tensor:
    """``log(pred + offset) - log(target + offset)`` (DINOv2/DINOv3: offset 1e-3), or with ``log_offset=0`` the
    logs of ``pred`` and ``target`` clamped to ``eps`` (so that 0 targets, masked anyway, stay finite)."""
    if log_offset > 0:
        return torch.log(pred.clamp(min=0.0) + log_offset) - torch.log(target.clamp(min=0.0) + log_offset)
    return torch.log(pred.clamp(min=eps)) - torch.log(target.clamp(min=eps))


def silog_loss(pred: Tensor, target: Tensor, mask: Tensor, variance_focus: float = 0.85, reduction: str = "batch",
               eps: float = 1e-6, log_offset: float = 0.0, unbiased: bool = False,
               mean_term_only: bool = False) -> Tensor:
    """``sqrt(mean(g^2) - variance_focus * mean(g)^2)``, ``g = log(pred) - log(target)`` over ``mask``.

    ``reduction='batch'`` pools the valid pixels of the whole batch (AdaBins / DINOv2); ``'image'`` takes the
    loss per image and averages over the images that have valid pixels (mmseg's ``SiLogLoss``). With no valid
    pixel at all the loss is 0 (still connected to ``pred`` so that backward works).

    The same in DINOv2's terms: ``sqrt(var(g) + (1 - variance_focus) mean(g)^2)`` with the population variance;
    ``unbiased=True`` uses ``torch.var``'s n - 1 instead (DINOv2, DINOv3; batch reduction only), ``log_offset``
    adds 1e-3 inside the logs (DINOv2, DINOv3), ``mean_term_only`` keeps only ``(1 - variance_focus) mean(g)^2``
    (their 100-iteration warm-up).
    """
    g = _log_ratio(pred, target, log_offset, eps)  # [B, 1, H, W]
    g = torch.where(mask, g, torch.zeros_like(g))
    m = mask.to(g.dtype)
    if reduction == "batch":
        n = m.sum()
        if n == 0:
            return pred.sum() * 0.0
        mean = g.sum() / n
        if mean_term_only:
            return torch.sqrt((1.0 - variance_focus) * mean.square() + 1e-12)
        if unbiased:
            var = ((g - mean).square() * m).sum() / (n - 1).clamp(min=1.0)
            d = (var + (1.0 - variance_focus) * mean.square()).clamp(min=0.0)
        else:
            d = (g.square().sum() / n - variance_focus * mean.square()).clamp(min=0.0)
        return torch.sqrt(d + 1e-12)
    if unbiased or mean_term_only:
        raise UserError("unbiased and the warm-up are defined for reduction='batch' (DINOv2's) only")
    if reduction != "image":
        raise UserError(f"reduction must be 'batch' or 'image', got {reduction!r}")
    n = m.flatten(1).sum(1)  # [B]
    keep = n > 0
    if not keep.any():
        return pred.sum() * 0.0
    n = n.clamp(min=1.0)
    d = g.square().flatten(1).sum(1) / n - variance_focus * (g.flatten(1).sum(1) / n).square()
    return torch.sqrt(d.clamp(min=0.0) + 1e-12)[keep].mean()


GRADIENT_VARIANTS = ("adjacent", "dinov3", "dinov2")


def gradient_matching_loss(pred: Tensor, target: Tensor, mask: Tensor, scales: int = 4, eps: float = 1e-6,
                           strides: Optional[Sequence[int]] = None, distance: int = 1,
                           log_offset: float = 0.0) -> Tensor:
    """Multi-scale gradient matching on ``R = log(pred) - log(target)`` (MegaDepth, Li & Snavely 2018).

    At each stride ``s`` (maps subsampled as ``[..., ::s, ::s]``; default ``2**k`` for ``k < scales``) the loss adds
    ``sum(|R[y, x+d] - R[y, x]| + |R[y+d, x] - R[y, x]|) / n_s`` over pairs ``d = distance`` apart whose two pixels
    are valid, ``n_s`` being the number of valid pixels at that stride (pooled over the batch). Strides without a
    valid pixel add nothing. DINOv3's ``GradientLogLoss``: ``strides=(1, 2, 4, 6), distance=2, log_offset=1e-3``.
    """
    r = _log_ratio(pred, target, log_offset, eps)  # [B, 1, H, W]
    r = torch.where(mask, r, torch.zeros_like(r))
    d = distance
    total = pred.sum() * 0.0
    for s in (strides if strides is not None else [2 ** k for k in range(scales)]):
        rk, mk = r[..., ::s, ::s], mask[..., ::s, ::s]
        n = mk.sum()
        if n == 0:
            continue
        gx = (rk[..., :, d:] - rk[..., :, :-d]).abs() * (mk[..., :, d:] & mk[..., :, :-d])
        gy = (rk[..., d:, :] - rk[..., :-d, :]).abs() * (mk[..., d:, :] & mk[..., :-d, :])
        total = total + (gx.sum() + gy.sum()) / n
    return total


def dinov2_gradient_loss(pred: Tensor, target: Tensor, mask: Tensor, log_offset: float = 1e-3) -> Tensor:
    """DINOv2's ``GradientLoss`` (``eval/depth/models/losses/gradientloss.py``) as written, on [B, 1, H, W] maps.

    Its slices ``x[::2i, ::2i]`` and differences ``x[0:-2, :] - x[2:, :]`` / ``x[:, 0:-2] - x[:, 2:]`` act on
    the first two axes, which for these maps are the batch and the (single) channel: the vertical term compares
    images two apart in the batch and the horizontal term is empty. With 2 images per GPU (DINOv2's runs) the
    loss is exactly 0; it is kept for fidelity, not as a gradient loss.
    """
    r = (_log_ratio(pred, target, log_offset) * mask).flatten(2)  # [B, 1, H*W]: only the first two axes matter
    m = mask.flatten(2).to(r.dtype)
    total = pred.sum() * 0.0
    for s in (1, 2, 4, 6):
        rk, mk = r[::s, ::s], m[::s, ::s]
        n = mk.sum()
        if n == 0:  # DINOv2 divides by 0 here (NaN); a scale without valid pixels adds nothing instead
            continue
        v = ((rk[:-2] - rk[2:]).abs() * mk[:-2] * mk[2:]).sum()
        h = ((rk[:, :-2] - rk[:, 2:]).abs() * mk[:, :-2] * mk[:, 2:]).sum()
        total = total + (v + h) / n
    return total


class _DepthLoss(nn.Module):
    """Common arguments: depth range of valid ground truth, weight and the name mmseg logs the loss under."""

    def __init__(self, min_depth: float = 1e-3, max_depth: Optional[float] = None, loss_weight: float = 1.0,
                 loss_name: str = "loss_depth") -> None:
        super().__init__()
        if not loss_name.startswith("loss_"):
            raise UserError(f"loss_name must start with 'loss_' (mmengine only back-propagates those), "
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
        min_depth, max_depth: ground truth outside ``(min_depth, max_depth]`` is ignored (DINOv2: ``min_depth=0``,
            i.e. ``0 < gt <= max_depth``).
        log_offset: added inside both logs (DINOv2 and DINOv3: 1e-3); 0 clamps instead.
        unbiased: ``torch.var``'s n - 1 variance, as DINOv2's and DINOv3's ``SigLoss``.
        warmup_iters: for the first N training calls only the ``(1 - lambda) mean(g)^2`` term (DINOv2's and DINOv3's
            ``warm_up=True``, N = 100). The count is a buffer, saved with the model.
    """

    def __init__(self, variance_focus: float = 0.85, reduction: str = "batch", min_depth: float = 1e-3,
                 max_depth: Optional[float] = None, loss_weight: float = 1.0, loss_name: str = "loss_silog",
                 log_offset: float = 0.0, unbiased: bool = False, warmup_iters: int = 0) -> None:
        super().__init__(min_depth, max_depth, loss_weight, loss_name)
        if reduction not in ("batch", "image"):
            raise UserError(f"reduction must be 'batch' or 'image', got {reduction!r}")
        if not 0.0 <= variance_focus <= 1.0:
            raise UserError(f"variance_focus must lie in [0, 1], got {variance_focus}")
        if reduction != "batch" and (unbiased or warmup_iters):
            raise UserError("unbiased and warmup_iters are defined for reduction='batch' (DINOv2's) only")
        if log_offset < 0 or warmup_iters < 0:
            raise UserError(f"log_offset and warmup_iters must be >= 0, got {log_offset} and {warmup_iters}")
        self.variance_focus, self.reduction = variance_focus, reduction
        self.log_offset, self.unbiased, self.warmup_iters = float(log_offset), bool(unbiased), int(warmup_iters)
        if self.warmup_iters:  # training calls so far; a buffer, so that checkpoints and resumes keep it
            self.register_buffer("warmup_calls", torch.zeros((), dtype=torch.long))

    def forward(self, pred: Tensor, target: Tensor, **kwargs) -> Tensor:
        _check_pair(pred, target, "SILogLoss")
        mask = valid_depth_mask(target, self.min_depth, self.max_depth)
        warm = False
        if self.warmup_iters and self.training:
            warm = bool(self.warmup_calls < self.warmup_iters)
            self.warmup_calls += 1
        return self.loss_weight * silog_loss(pred, target, mask, self.variance_focus, self.reduction,
                                             log_offset=self.log_offset, unbiased=self.unbiased,
                                             mean_term_only=warm)


@MODELS.register_module()
class GradientMatchingLoss(_DepthLoss):
    """Multi-scale log-depth gradient matching (``type='dense_adapters.GradientMatchingLoss'``).

    DINOv2 and DINOv3 weight it 0.5 next to their SigLoss. Variants:

    * ``'adjacent'`` (default; this toolkit's): neighbouring pixels (distance 1) at strides 1, 2, 4, 8 (``scales``).
    * ``'dinov3'``: DINOv3's ``GradientLogLoss`` (``dinov3/eval/depth/loss.py``): pixels 2 apart at strides
      1, 2, 4, 6, logs of ``x + 1e-3``.
    * ``'dinov2'``: DINOv2's ``GradientLoss`` as written, which slices its 4-D inputs as if they were 2-D (batch
      and channel axes): exactly 0 with 2 images per GPU, as in DINOv2's runs; it warns once when it sees more.
    """

    def __init__(self, scales: int = 4, min_depth: float = 1e-3, max_depth: Optional[float] = None,
                 loss_weight: float = 1.0, loss_name: str = "loss_grad", variant: str = "adjacent") -> None:
        super().__init__(min_depth, max_depth, loss_weight, loss_name)
        if scales < 1:
            raise UserError(f"scales must be >= 1, got {scales}")
        if variant not in GRADIENT_VARIANTS:
            raise UserError(f"unknown GradientMatchingLoss variant {variant!r}: use one of {GRADIENT_VARIANTS}")
        self.scales, self.variant = scales, variant
        self._warned = False

    def forward(self, pred: Tensor, target: Tensor, **kwargs) -> Tensor:
        _check_pair(pred, target, "GradientMatchingLoss")
        mask = valid_depth_mask(target, self.min_depth, self.max_depth)
        if self.variant == "dinov2":
            if pred.shape[0] > 2 and not self._warned:
                warnings.warn("GradientMatchingLoss(variant='dinov2') compares images two apart in the batch, as "
                              "DINOv2's code does; with 2 images per GPU (DINOv2's runs) it is 0", stacklevel=2)
                self._warned = True
            return self.loss_weight * dinov2_gradient_loss(pred, target, mask)
        if self.variant == "dinov3":
            return self.loss_weight * gradient_matching_loss(pred, target, mask, strides=(1, 2, 4, 6), distance=2,
                                                             log_offset=1e-3)
        return self.loss_weight * gradient_matching_loss(pred, target, mask, self.scales)


__all__: Sequence[str] = ("SILogLoss", "GradientMatchingLoss", "silog_loss", "gradient_matching_loss",
                          "dinov2_gradient_loss", "valid_depth_mask")
