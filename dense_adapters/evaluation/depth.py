"""Monocular depth evaluation with an explicit protocol: Eigen crop, depth-range mask, prediction clipping, and
both per-image and pixel-pooled averaging.

Protocol (the one of BTS, AdaBins and the Monocular-Depth-Estimation-Toolbox that DINOv2 and the Registers
paper evaluate with), on ground truth at NYU's 480 x 640 resolution:

* valid pixels: ``min_depth < gt < max_depth`` (NYU: 1e-3 and 10 m; 0 = no measurement);
* Eigen crop (NYU): rows 45..470 and columns 41..600, inclusive, i.e. ``gt[45:471, 41:601]`` (426 x 560 px);
* predictions are first clipped to ``[min_depth, max_depth]`` (NaN -> min_depth, +inf -> max_depth);
* metrics per image over its valid pixels, then the mean over images ("per-image", the common protocol: a
  dataset RMSE is the mean of per-image RMSEs). Pixel-pooled ("whole-set") averaging computes each metric
  once over the valid pixels of all images; RMSE then weights images by their valid pixel count and is the
  square root of a mean, which is not the mean of square roots. Both are reported (pooled with ``_pooled``).

Metrics (``g = log(pred) - log(gt)``): d1/d2/d3 = share of ``max(pred/gt, gt/pred) < 1.25**k``; abs_rel =
``mean(|pred - gt| / gt)``; sq_rel = ``mean((pred - gt)^2 / gt)``; rmse = ``sqrt(mean((pred - gt)^2))``;
rmse_log = ``sqrt(mean(g^2))``; log10 = ``mean(|log10 pred - log10 gt|)``; silog =
``100 * sqrt(mean(g^2) - mean(g)^2)``. (mmseg's ``DepthMetric`` reports silog as
``sqrt(mean(g^2) - 0.5 mean(g)^2)`` without the 100, does not clip predictions, and has no pooled mode.)
"""
from __future__ import annotations

import os.path as osp
from collections import OrderedDict
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from ..errors import DataError, DenseAdaptersError, UserError
from ..registry import METRICS

METRIC_NAMES = ("d1", "d2", "d3", "abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "silog")
EIGEN_CROP_NYU = (45, 471, 41, 601)  # rows [45, 471), cols [41, 601) on 480 x 640 ground truth
NYU_SHAPE = (480, 640)
CropType = Union[None, str, Sequence[int]]
_SUM_KEYS = ("n", "d1", "d2", "d3", "abs_rel", "sq_rel", "se", "se_log", "log10", "g")


def crop_box(shape: Tuple[int, int], crop: CropType) -> Tuple[int, int, int, int]:
    """(top, bottom, left, right), end-exclusive, of the evaluated region of a ground-truth map of ``shape``.

    ``crop``: ``None``/``'none'`` (whole map), ``'eigen'`` (NYU's Eigen crop; the map must be 480 x 640),
    ``'eigen_scaled'`` (the same fractions of any size, rounded down: top = 45/480 H, ...), or an explicit
    ``(top, bottom, left, right)``.
    """
    h, w = shape
    if crop is None or crop == "none":
        return 0, h, 0, w
    if crop == "eigen":
        if tuple(shape) != NYU_SHAPE:
            raise DataError(f"the Eigen crop is defined on 480x640 NYU ground truth, got {h}x{w}: evaluate at "
                            "NYU's resolution, or use crop='eigen_scaled' or crop=None")
        return EIGEN_CROP_NYU
    if crop == "eigen_scaled":
        t, b, le, r = EIGEN_CROP_NYU
        return int(t / 480 * h), int(b / 480 * h), int(le / 640 * w), int(r / 640 * w)
    if isinstance(crop, str):
        raise UserError(f"unknown crop {crop!r}: use None, 'eigen', 'eigen_scaled' or (top, bottom, left, right)")
    t, b, le, r = (int(v) for v in crop)
    if not (0 <= t < b <= h and 0 <= le < r <= w):
        raise UserError(f"crop {tuple(crop)} does not fit a {h}x{w} map: need 0 <= top < bottom <= H and "
                        "0 <= left < right <= W")
    return t, b, le, r


def eval_mask(gt: np.ndarray, min_depth: float = 1e-3, max_depth: float = 10.0, crop: CropType = "eigen"
              ) -> np.ndarray:
    """Bool [H, W]: ground truth inside ``(min_depth, max_depth)`` and inside the crop."""
    mask = (gt > min_depth) & (gt < max_depth)  # NaN compares False: invalid
    t, b, le, r = crop_box(gt.shape, crop)
    box = np.zeros_like(mask)
    box[t:b, le:r] = True
    return mask & box


def clip_prediction(pred: np.ndarray, min_depth: float, max_depth: float) -> np.ndarray:
    """Clip to ``[min_depth, max_depth]``; NaN -> min_depth, +inf -> max_depth (as BTS's evaluation)."""
    pred = np.nan_to_num(pred.astype(np.float64), nan=min_depth, posinf=max_depth, neginf=min_depth)
    return np.clip(pred, min_depth, max_depth)


def error_sums(pred: np.ndarray, gt: np.ndarray) -> Dict[str, float]:
    """Sufficient statistics over paired valid pixels (1-D arrays, metres, all > 0)."""
    pred, gt = pred.astype(np.float64), gt.astype(np.float64)
    if pred.size and (pred <= 0).any():
        raise DataError("depth predictions must be > 0 on evaluated pixels: clip them (clip_pred=True)")
    ratio = np.maximum(pred / gt, gt / pred)
    diff = pred - gt
    g = np.log(pred) - np.log(gt)
    return dict(
        n=float(gt.size), d1=float((ratio < 1.25).sum()), d2=float((ratio < 1.25 ** 2).sum()),
        d3=float((ratio < 1.25 ** 3).sum()), abs_rel=float((np.abs(diff) / gt).sum()),
        sq_rel=float((diff ** 2 / gt).sum()), se=float((diff ** 2).sum()), se_log=float((g ** 2).sum()),
        log10=float(np.abs(np.log10(pred) - np.log10(gt)).sum()), g=float(g.sum()))


def metrics_from_sums(s: Dict[str, float]) -> Dict[str, float]:
    """The nine metrics from :func:`error_sums` (of one image, or added up over images for pooled averaging)."""
    n = s["n"]
    if n == 0:
        raise DataError("no valid pixel to evaluate")
    mean_g = s["g"] / n
    return dict(
        d1=s["d1"] / n, d2=s["d2"] / n, d3=s["d3"] / n, abs_rel=s["abs_rel"] / n, sq_rel=s["sq_rel"] / n,
        rmse=float(np.sqrt(s["se"] / n)), rmse_log=float(np.sqrt(s["se_log"] / n)), log10=s["log10"] / n,
        silog=float(100.0 * np.sqrt(max(s["se_log"] / n - mean_g ** 2, 0.0))))


def image_sums(pred: np.ndarray, gt: np.ndarray, min_depth: float = 1e-3, max_depth: float = 10.0,
               crop: CropType = "eigen", clip_pred: bool = True) -> Dict[str, float]:
    """Sums of one image (pred and gt [H, W] in metres, same size) under the protocol above."""
    pred, gt = np.squeeze(np.asarray(pred)), np.squeeze(np.asarray(gt))
    if pred.shape != gt.shape:
        raise DataError(f"prediction {pred.shape} and ground truth {gt.shape} differ in size: resize the "
                        "prediction to the ground truth first")
    if clip_pred:
        pred = clip_prediction(pred, min_depth, max_depth)
    mask = eval_mask(gt, min_depth, max_depth, crop)
    return error_sums(pred[mask], gt[mask])


def aggregate(sums: Sequence[Dict[str, float]], averaging: Sequence[str] = ("image", "pixel")
              ) -> "OrderedDict[str, float]":
    """Per-image means (names as :data:`METRIC_NAMES`) and/or pixel-pooled metrics (``<name>_pooled``).

    Images without a valid pixel are left out of both (their count is ``n_empty``)."""
    kept = [s for s in sums if s["n"] > 0]
    if not kept:
        raise DataError(f"none of the {len(sums)} images has a valid ground-truth pixel in the evaluated region: "
                        "check the depth scale (metres), min/max depth and the crop")
    out: "OrderedDict[str, float]" = OrderedDict()
    if "image" in averaging:
        per = [metrics_from_sums(s) for s in kept]
        for k in METRIC_NAMES:
            out[k] = float(np.mean([m[k] for m in per]))
    if "pixel" in averaging:
        total = {k: sum(s[k] for s in kept) for k in _SUM_KEYS}
        for k, v in metrics_from_sums(total).items():
            out[f"{k}_pooled"] = v
    out["n_images"] = float(len(kept))
    out["n_empty"] = float(len(sums) - len(kept))
    return out


def format_table(results: Dict[str, float]) -> str:
    """Two-row table (per-image, pooled) of the metrics present in ``results``."""
    from prettytable import PrettyTable

    table = PrettyTable(["averaging", *METRIC_NAMES])
    for label, suffix in (("per-image", ""), ("pooled", "_pooled")):
        if f"d1{suffix}" in results:
            table.add_row([label, *(f"{results[k + suffix]:.4f}" for k in METRIC_NAMES)])
    return table.get_string()


@METRICS.register_module()
class DepthEvalMetric(BaseMetric):
    """Depth metrics under an explicit protocol (``type='dense_adapters.DepthEvalMetric'``); see the module doc.

    Args:
        min_depth, max_depth: ground truth counts where ``min_depth < gt < max_depth`` (NYU: 1e-3, 10).
        crop: ``'eigen'`` (NYU 480 x 640: ``gt[45:471, 41:601]``), ``'eigen_scaled'``, ``None`` or
            ``(top, bottom, left, right)``.
        clip_pred: clip predictions to ``[min_depth, max_depth]`` before measuring (BTS/AdaBins protocol).
        averaging: any of ``'image'`` (metric per image, then the mean; keys ``d1``, ``rmse``, ...) and
            ``'pixel'`` (pooled over all valid pixels; keys ``d1_pooled``, ...).
        output_dir: also write each prediction as a uint16 PNG in millimetres (``tools/eval_depth.py`` reads it).
    """

    default_prefix: Optional[str] = None

    def __init__(self, min_depth: float = 1e-3, max_depth: float = 10.0, crop: CropType = "eigen",
                 clip_pred: bool = True, averaging: Sequence[str] = ("image", "pixel"),
                 output_dir: Optional[str] = None, collect_device: str = "cpu", prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not 0 <= min_depth < max_depth:
            raise UserError(f"need 0 <= min_depth < max_depth, got {min_depth} and {max_depth}")
        averaging = (averaging,) if isinstance(averaging, str) else tuple(averaging)
        if not averaging or set(averaging) - {"image", "pixel"}:
            raise UserError(f"averaging must name 'image' and/or 'pixel', got {averaging}")
        if isinstance(crop, str) and crop not in ("none", "eigen", "eigen_scaled"):
            raise UserError(f"unknown crop {crop!r}: use None, 'eigen', 'eigen_scaled' or (top, bottom, left, right)")
        self.min_depth, self.max_depth, self.crop = float(min_depth), float(max_depth), crop
        self.clip_pred, self.averaging, self.output_dir = clip_pred, averaging, output_dir

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        for ds in data_samples:
            pred = ds["pred_depth_map"]["data"].squeeze().float().cpu().numpy()
            if "gt_depth_map" not in ds:
                raise DataError("DepthEvalMetric needs gt_depth_map: keep LoadDepthAnnotation in the test pipeline")
            gt = ds["gt_depth_map"]["data"].squeeze().float().cpu().numpy()
            name = osp.basename(ds.get("img_path", "?"))
            try:
                sums = image_sums(pred, gt, self.min_depth, self.max_depth, self.crop, self.clip_pred)
            except ValueError as e:  # the image's name in front; our errors keep their class
                raise (type(e) if isinstance(e, DenseAdaptersError) else ValueError)(f"{name}: {e}") from None
            self.results.append(sums)
            if self.output_dir:
                import os

                import cv2

                os.makedirs(self.output_dir, exist_ok=True)
                mm = np.clip(np.nan_to_num(pred) * 1000.0, 0, 65535).round().astype(np.uint16)
                cv2.imwrite(osp.join(self.output_dir, osp.splitext(name)[0] + ".png"), mm)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        out = aggregate(results, self.averaging)
        msg = (f"depth: {int(out['n_images'])} images, range ({self.min_depth:g}, {self.max_depth:g}) m, "
               f"crop={self.crop}, clip_pred={self.clip_pred}")
        if out["n_empty"]:
            msg += f"; {int(out['n_empty'])} images without valid pixels left out"
        print_log(msg + "\n" + format_table(out), logger="current")
        return dict(out)
