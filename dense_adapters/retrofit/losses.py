"""Distillation losses of the retrofit, in float32 whatever the autocast dtype.

Stage 2 matches features with ``cosine + relative MSE``, because the features' users read both: LOST, kNN and
retrieval use directions (dot products, cosine), linear probes and DPT-style heads also use magnitudes. Cosine alone
leaves each token's norm free; MSE alone is dominated by the largest tokens (the high-norm artifact tokens of
register-less ViTs reach 10x the median norm) and leaves ordinary tokens' directions loose. The relative MSE
(squared error over the teacher's squared norm) keeps both terms scale-free, so one weight fits every model width.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

EPS = 1e-12


def rel_mse(student: Tensor, teacher: Tensor) -> Tensor:
    """sum (s - t)^2 / sum t^2 over everything: 0 = equal, 1 = as far as predicting zeros."""
    s, t = student.float(), teacher.float()
    return (s - t).pow(2).sum() / t.pow(2).sum().clamp_min(EPS)


def cosine_distance(student: Tensor, teacher: Tensor) -> Tensor:
    """1 - mean cosine similarity over the last dimension (per token)."""
    return 1.0 - F.cosine_similarity(student.float(), teacher.float(), dim=-1, eps=1e-8).mean()


def feature_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """Stage-2 loss of one group of tokens [..., C]: cosine distance + relative MSE."""
    return cosine_distance(student, teacher) + rel_mse(student, teacher)


def charbonnier(student: Tensor, teacher: Tensor, eps: float = 1e-3) -> Tensor:
    """Mean sqrt((s - t)^2 + eps^2) (Uformer's training loss), here between two restorers' outputs."""
    return torch.sqrt((student.float() - teacher.float()).pow(2) + eps * eps).mean()
