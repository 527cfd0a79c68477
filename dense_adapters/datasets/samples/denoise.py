"""A denoising sample: real photos (scikit-image's bundled files) with synthetic Gaussian noise, folder layout.

    <out>/denoise/{train,val}/{noisy,gt}/<name>.png

``gt`` holds the clean photos, ``noisy`` the same photos with Gaussian noise (sigma 25 on 0..255, fixed seed),
so the sample serves both the paired-folder datasets and the synthetic-noise mode (clean images of train/gt).
"""
from __future__ import annotations

import os

import numpy as np

from . import photos, register_sample

TRAIN = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "motorcycle_left", "camera", "coins")
VAL = ("motorcycle_right", "clock", "hubble", "retina")
SIGMA = 25.0


@register_sample("denoise")
def make_denoise_sample(out_dir: str, max_side: int = 256, sigma: float = SIGMA, seed: int = 0) -> str:
    """Write the sample under ``out_dir/denoise`` and return that data root."""
    from PIL import Image

    root = os.path.join(out_dir, "denoise")
    ims = photos(max_side=max_side)
    rng = np.random.default_rng(seed)
    for split, names in (("train", TRAIN), ("val", VAL)):
        for sub in ("noisy", "gt"):
            os.makedirs(os.path.join(root, split, sub), exist_ok=True)
        for name in names:
            gt = ims[name]
            noisy = np.clip(np.round(gt + rng.normal(0, sigma, gt.shape)), 0, 255).astype(np.uint8)
            Image.fromarray(gt).save(os.path.join(root, split, "gt", f"{name}.png"))
            Image.fromarray(noisy).save(os.path.join(root, split, "noisy", f"{name}.png"))
    return root
