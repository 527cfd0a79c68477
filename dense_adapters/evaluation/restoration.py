"""PSNR and SSIM on 0..255 RGB, computed as the standard Uformer/SIDD Python evaluation does; sequences (video)
are scored as the mean of their per-frame values, and a dataset as the mean over its sequences.

Both round the prediction (clamped to [0, 1]) to uint8 first, as Uformer saves and scores ``img_as_ubyte``
outputs. PSNR: ``10 log10(255^2 / MSE)`` over all pixels and channels (skimage ``peak_signal_noise_ratio`` with
``data_range=255``). SSIM: Wang et al.'s settings, per channel and averaged: 11x11 Gaussian window with sigma 1.5,
population covariances, K1 = 0.01, K2 = 0.03, L = 255, mean over the valid region (5-pixel border dropped), which is
skimage ``structural_similarity(..., data_range=255, channel_axis=-1, gaussian_weights=True, sigma=1.5,
use_sample_covariance=False)`` and Uformer's ``utils/caculate_psnr_ssim.py``.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from torch import Tensor

from ..errors import DataError, UserError
from ..registry import METRICS


def to_uint8_chw(img: Any) -> Tensor:
    """A [3, H, W] tensor (float in [0, 1] or uint8) or [H, W, 3] uint8 array -> float64 [C, H, W] in 0..255."""
    if isinstance(img, np.ndarray):
        if img.ndim != 3:
            raise DataError(f"expected an [H, W, C] array, got shape {img.shape}")
        img = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)
    if not isinstance(img, Tensor) or img.ndim != 3:
        raise DataError(f"expected a [C, H, W] tensor, got {type(img).__name__} {getattr(img, 'shape', '')}")
    if img.dtype == torch.uint8:
        return img.double()
    return (img.detach().double().clamp(0, 1) * 255.0).round()


def psnr(pred: Any, gt: Any, crop_border: int = 0) -> float:
    """PSNR in dB of two images on 0..255 (see module doc for the conversion); inf for identical images."""
    a, b = to_uint8_chw(pred), to_uint8_chw(gt)
    _check_pair(a, b)
    if crop_border:
        a, b = a[:, crop_border:-crop_border, crop_border:-crop_border], b[:, crop_border:-crop_border, crop_border:-crop_border]
    mse = ((a - b) ** 2).mean().item()
    return float("inf") if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def gaussian_kernel(size: int = 11, sigma: float = 1.5) -> Tensor:
    """Normalised 1-D Gaussian, float64 [size]."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(pred: Any, gt: Any, crop_border: int = 0, win_size: int = 11, sigma: float = 1.5) -> float:
    """Mean SSIM over channels (Wang et al. 2004 settings, see module doc)."""
    a, b = to_uint8_chw(pred), to_uint8_chw(gt)
    _check_pair(a, b)
    if crop_border:
        a, b = a[:, crop_border:-crop_border, crop_border:-crop_border], b[:, crop_border:-crop_border, crop_border:-crop_border]
    if min(a.shape[-2:]) < win_size:
        raise DataError(f"SSIM needs images of at least {win_size}x{win_size} pixels, got {tuple(a.shape[-2:])}")
    g = gaussian_kernel(win_size, sigma)
    C = a.shape[0]
    kh, kw = g.view(1, 1, -1, 1).repeat(C, 1, 1, 1), g.view(1, 1, 1, -1).repeat(C, 1, 1, 1)

    def filt(x: Tensor) -> Tensor:  # [C, H, W] -> [C, H-10, W-10], separable 'valid' Gaussian
        return F.conv2d(F.conv2d(x[None], kh, groups=C), kw, groups=C)[0]

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = filt(a), filt(b)
    var_a = filt(a * a) - mu_a**2
    var_b = filt(b * b) - mu_b**2
    cov = filt(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.mean(dim=(1, 2)).mean().item()


def _check_pair(a: Tensor, b: Tensor) -> None:
    if a.shape != b.shape:
        raise DataError(f"prediction {tuple(a.shape)} and ground truth {tuple(b.shape)} differ in shape")


def sequence_score(score: Callable[..., float], pred: Any, gt: Any, **kw) -> float:
    """Mean over frames of ``score`` for sequences [T, 3, H, W] (or [T, H, W, 3] arrays), as the video-denoising
    papers report a sequence (FastDVDnet, VRT: the average of the per-frame PSNR/SSIM); a single image as is."""
    if getattr(pred, "ndim", 0) != 4:
        return score(pred, gt, **kw)
    if len(pred) != len(gt) or len(pred) == 0:
        raise DataError(f"prediction has {len(pred)} frames, ground truth {len(gt)}: they must match")
    return float(np.mean([score(p, g, **kw) for p, g in zip(pred, gt)]))


class _RestorationMetric(BaseMetric):
    """Scores ``pred_img`` against ``gt_img`` of each data sample (images [3, H, W] or sequences
    [T, 3, H, W], a sequence scored as the mean over its frames) and reports the mean over samples.

    Args:
        per_sequence: also report ``<metric>_<sequence>`` for every sample that names its ``sequence`` (the
            per-sequence values are logged in any case).
    """

    metric_name = ""

    def __init__(self, crop_border: int = 0, per_sequence: bool = False, collect_device: str = "cpu",
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.crop_border, self.per_sequence = crop_border, per_sequence

    def score(self, pred: Tensor, gt: Tensor) -> float:
        raise NotImplementedError

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        for s in data_samples:
            if "pred_img" not in s or "gt_img" not in s:
                raise UserError(f"{type(self).__name__} needs 'pred_img' and 'gt_img' in each data sample, got "
                                f"{sorted(s)}: use dense_adapters.Restorer in predict mode")
            value = sequence_score(self.score, s["pred_img"].cpu(), s["gt_img"].cpu())
            self.results.append((s.get("sequence"), value))

    def compute_metrics(self, results: list) -> dict:
        out = {self.metric_name: float(np.mean([v for _, v in results]))}
        named = [(n, v) for n, v in results if n is not None]
        if named:
            from mmengine.logging import MMLogger

            table = ", ".join(f"{n} {v:.4g}" for n, v in named)
            MMLogger.get_current_instance().info(f"{self.metric_name} per sequence ({len(named)}): {table}")
            if self.per_sequence:
                out.update({f"{self.metric_name}_{n}": float(v) for n, v in named})
        return out


@METRICS.register_module()
class PSNR(_RestorationMetric):
    """``type='dense_adapters.PSNR'``: mean PSNR (dB) over images (or sequences) on 0..255 RGB."""

    metric_name = "PSNR"

    def score(self, pred: Tensor, gt: Tensor) -> float:
        return psnr(pred, gt, self.crop_border)


@METRICS.register_module()
class SSIM(_RestorationMetric):
    """``type='dense_adapters.SSIM'``: mean SSIM over images or sequences (Gaussian 11x11, sigma 1.5, per channel)."""

    metric_name = "SSIM"

    def score(self, pred: Tensor, gt: Tensor) -> float:
        return ssim(pred, gt, self.crop_border)
