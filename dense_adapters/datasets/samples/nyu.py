"""A NYU-Depth-v2-format sample from real data: the Middlebury 2014 "Motorcycle" stereo scene.

``skimage.data.stereo_motorcycle()`` ships the left image and its ground-truth disparity (Scharstein et al.,
GCPR 2014), down-sampled 4x by scikit-image. Depth follows from the Middlebury calibration
(``calib.txt`` of Motorcycle: f = 3979.911 px, doffs = 124.343 px, baseline = 193.001 mm at full resolution;
for the 4x down-sampled pair, as scikit-image documents: f = 994.978 px, doffs = 31.086 px, baseline the same):

    depth [mm] = baseline * f / (disparity + doffs)

which puts the scene at about 2-5 m, inside NYU's 1e-3..10 m range. Pixels without ground truth (NaN/inf
disparity, occlusions) get 0, NYU's "no measurement". Samples are 480 x 640 crops of the 500 x 741 image
(NYU's resolution, so the Eigen crop applies as on NYU) at several offsets, with and without a horizontal flip
(a flip keeps depth valid; disparity would need no change either).

Layout as mmseg's ``NYUDataset`` expects (``data/nyu``): ``images/{train,test}/motorcycle_XX.jpg`` and
``annotations/{train,test}/motorcycle_XX.png`` (uint16 depth in millimetres; ``LoadDepthAnnotation`` with
``depth_rescale_factor=1e-3`` reads metres). Overlapping crops of one scene check a pipeline; they measure
nothing about generalisation.
"""
from __future__ import annotations

import os

import numpy as np

from . import register_sample

FOCAL_PX = 994.978  # 3979.911 / 4
DOFFS_PX = 31.086  # 124.343 / 4
BASELINE_MM = 193.001
CROP = (480, 640)
# (top, left, flip) of each 480 x 640 crop in the 500 x 741 image
TRAIN = [(0, 0, False), (20, 101, False), (10, 50, True), (0, 101, True), (20, 0, True), (5, 75, False)]
TEST = [(10, 30, False), (15, 90, True)]


def motorcycle_depth() -> tuple[np.ndarray, np.ndarray]:
    """Left image uint8 [500, 741, 3] and depth in millimetres float64 [500, 741] (0 = no ground truth)."""
    import skimage.data

    left, _, disp = skimage.data.stereo_motorcycle()
    disp = disp.astype(np.float64)
    valid = np.isfinite(disp) & (disp + DOFFS_PX > 0)
    depth = np.zeros_like(disp)
    depth[valid] = BASELINE_MM * FOCAL_PX / (disp[valid] + DOFFS_PX)
    return left, depth


@register_sample("nyu")
def make_nyu_sample(out_dir: str) -> str:
    """Write the sample under ``out_dir/nyu`` and return that data root."""
    from PIL import Image

    root = os.path.join(out_dir, "nyu")
    img, depth = motorcycle_depth()
    mm = np.clip(depth.round(), 0, 65535).astype(np.uint16)
    i = 0
    for split, crops in (("train", TRAIN), ("test", TEST)):
        os.makedirs(os.path.join(root, "images", split), exist_ok=True)
        os.makedirs(os.path.join(root, "annotations", split), exist_ok=True)
        for top, left, flip in crops:
            sl = (slice(top, top + CROP[0]), slice(left, left + CROP[1]))
            im, d = img[sl], mm[sl]
            if im.shape[:2] != CROP:
                raise RuntimeError(f"crop {top, left} leaves the {img.shape[:2]} image")
            if flip:
                im, d = im[:, ::-1], d[:, ::-1]
            name = f"motorcycle_{i:02d}"  # NYUDataset needs a digit in the name (category parsing)
            Image.fromarray(np.ascontiguousarray(im)).save(os.path.join(root, "images", split, name + ".jpg"),
                                                           quality=92)
            Image.fromarray(np.ascontiguousarray(d)).save(os.path.join(root, "annotations", split, name + ".png"))
            i += 1
    return root
