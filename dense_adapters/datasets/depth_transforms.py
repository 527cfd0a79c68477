"""The two training transforms of DINOv2's NYU depth protocol that mmseg lacks: the fixed "NYU crop" and the
gamma/brightness/colour augmentation, as the Monocular-Depth-Estimation-Toolbox (whose configs DINOv2's depth
heads were trained with) defines them in ``depth/datasets/pipelines/transforms.py``.

Both work on mmseg's results dict: ``img`` (H, W, 3, BGR as loaded) and every key of ``seg_fields`` (the depth
map ``gt_depth_map`` from ``LoadDepthAnnotation``).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from ..errors import DataError, UserError
from ..registry import TRANSFORMS


@TRANSFORMS.register_module()
class FixedCrop(BaseTransform):
    """Crop ``img`` and the ``seg_fields`` to rows ``top:bottom`` and columns ``left:right``
    (``type='dense_adapters.FixedCrop'``). The defaults are the toolbox's ``NYUCrop``: ``[45:472, 43:608]`` of
    NYU's 480 x 640 frames (427 x 565, the area with valid Kinect depth); images smaller than the box are an error.
    """

    def __init__(self, top: int = 45, bottom: int = 472, left: int = 43, right: int = 608) -> None:
        if not (0 <= top < bottom and 0 <= left < right):
            raise UserError(f"FixedCrop needs 0 <= top < bottom and 0 <= left < right, got rows {top}:{bottom} "
                            f"and columns {left}:{right}")
        self.top, self.bottom, self.left, self.right = top, bottom, left, right

    def transform(self, results: dict) -> dict:
        h, w = results["img"].shape[:2]
        if h < self.bottom or w < self.right:
            raise DataError(f"FixedCrop[{self.top}:{self.bottom}, {self.left}:{self.right}] needs images of at least "
                            f"{self.bottom} x {self.right}, got {h} x {w} ({results.get('img_path', 'image')}): it "
                            "is NYU's crop of 480 x 640 frames; drop it for other data")
        box = (slice(self.top, self.bottom), slice(self.left, self.right))
        results["img"] = results["img"][box]
        for key in results.get("seg_fields", []):
            results[key] = results[key][box]
        results["img_shape"] = results["img"].shape[:2]
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rows={self.top}:{self.bottom}, columns={self.left}:{self.right})"


@TRANSFORMS.register_module()
class GammaBrightnessColorAug(BaseTransform):
    """The toolbox's depth ``ColorAug`` (``type='dense_adapters.GammaBrightnessColorAug'``): with probability
    ``prob``, ``img ** gamma * brightness * colour`` clipped to [0, 255], with ``gamma``, ``brightness`` and a
    colour factor per channel drawn uniformly from their ranges. As written upstream the power acts on the 0..255
    values (not on [0, 1]), so gamma 1.1 also brightens strongly; this reproduces that. The result is float64.
    """

    def __init__(self, prob: float = 0.5, gamma_range: Sequence[float] = (0.9, 1.1),
                 brightness_range: Sequence[float] = (0.75, 1.25), color_range: Sequence[float] = (0.9, 1.1)) -> None:
        if not 0.0 <= prob <= 1.0:
            raise UserError(f"prob must lie in [0, 1], got {prob}")
        for name, r in (("gamma_range", gamma_range), ("brightness_range", brightness_range),
                        ("color_range", color_range)):
            if len(r) != 2 or min(r) <= 0:
                raise UserError(f"{name} must be two positive numbers (low, high), got {r}")
        self.prob = prob
        self.gamma_range, self.brightness_range, self.color_range = gamma_range, brightness_range, color_range

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        img = results["img"]
        gamma = np.random.uniform(min(self.gamma_range), max(self.gamma_range))
        brightness = np.random.uniform(min(self.brightness_range), max(self.brightness_range))
        colors = np.random.uniform(min(self.color_range), max(self.color_range), size=3)
        out = np.power(img.astype(np.float64), gamma) * brightness * colors[None, None, :]
        results["img"] = np.clip(out, 0, 255)
        return results

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(prob={self.prob}, gamma_range={self.gamma_range}, "
                f"brightness_range={self.brightness_range}, color_range={self.color_range})")
