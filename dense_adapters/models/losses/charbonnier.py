"""Charbonnier loss (a smooth L1), as Uformer trains its restorers: mean(sqrt((x - y)^2 + eps^2))."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from ...errors import UserError
from ...registry import MODELS


def charbonnier_loss(pred: Tensor, target: Tensor, eps: float = 1e-3, weight: Optional[Tensor] = None) -> Tensor:
    """Mean over all elements of sqrt((pred - target)^2 + eps^2); ``weight`` broadcasts over the elements."""
    if pred.shape != target.shape:
        raise UserError(f"charbonnier_loss: pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    loss = torch.sqrt((pred - target) ** 2 + eps * eps)
    if weight is not None:
        return (loss * weight).sum() / weight.expand_as(loss).sum().clamp_min(1e-12)
    return loss.mean()


@MODELS.register_module()
class CharbonnierLoss(nn.Module):
    """``type='dense_adapters.CharbonnierLoss'``; Uformer uses eps = 1e-3 on images in [0, 1]."""

    def __init__(self, eps: float = 1e-3, loss_weight: float = 1.0, loss_name: str = "loss_charbonnier") -> None:
        super().__init__()
        if eps <= 0:
            raise UserError(f"CharbonnierLoss eps must be > 0, got {eps}")
        self.eps, self.loss_weight, self._loss_name = eps, loss_weight, loss_name

    @property
    def loss_name(self) -> str:
        return self._loss_name

    def forward(self, pred: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        return self.loss_weight * charbonnier_loss(pred, target, self.eps, weight)
