"""A classification sample in ImageNet's folder layout: each class is one of scikit-image's bundled photos.

    <out>/classes/{train,val}/<class>/<class>_<nnnn>.JPEG

Ten distinct photos (astronaut, camera, chelsea, coffee, coins, hubble, immunohistochemistry, motorcycle, retina,
rocket) are the classes; the samples are random crops (random side and aspect, resized to 64-112 px). Training crops
come from the left 60% of each photo and validation crops from the right 40%, so no validation pixel was seen in
training. ``camera`` and ``coins`` stay 8-bit greyscale JPEGs (ImageNet has those too); extensions are upper case as
ImageNet's. Deterministic for a given seed.
"""
from __future__ import annotations

import os

import numpy as np

from . import photos, register_sample

CLASSES = ("astronaut", "camera", "chelsea", "coffee", "coins", "hubble", "immunohistochemistry", "motorcycle",
           "retina", "rocket")
GREY = ("camera", "coins")
SPLIT_AT = 0.6  # train crops from x < 0.6 W, val crops from x >= 0.6 W


def _crop(img: np.ndarray, x0: int, x1: int, rng: np.random.Generator, out_side: int) -> np.ndarray:
    """A random crop inside columns [x0, x1) of ``img``, resized so that its long side is ``out_side``."""
    from PIL import Image

    H, W = img.shape[:2]
    region_w = x1 - x0
    side = int(rng.uniform(0.35, 0.7) * min(H, region_w))
    aspect = float(np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))))
    ch, cw = min(H, max(8, round(side / np.sqrt(aspect)))), min(region_w, max(8, round(side * np.sqrt(aspect))))
    top, left = int(rng.integers(0, H - ch + 1)), x0 + int(rng.integers(0, region_w - cw + 1))
    crop = Image.fromarray(img[top : top + ch, left : left + cw])
    scale = out_side / max(ch, cw)
    return np.array(crop.resize((max(1, round(cw * scale)), max(1, round(ch * scale))), Image.BICUBIC))


@register_sample("classes")
def make_class_sample(out_dir: str, train_per_class: int = 16, val_per_class: int = 6, seed: int = 0) -> str:
    """Write the sample under ``out_dir/classes`` and return that data root."""
    from PIL import Image

    root = os.path.join(out_dir, "classes")
    ims = photos(max_side=384)
    ims["motorcycle"] = ims.pop("motorcycle_left")
    rng = np.random.default_rng(seed)
    for name in CLASSES:
        img = ims[name]
        W = img.shape[1]
        cut = int(SPLIT_AT * W)
        for split, n, (x0, x1) in (("train", train_per_class, (0, cut)), ("val", val_per_class, (cut, W))):
            folder = os.path.join(root, split, name)
            os.makedirs(folder, exist_ok=True)
            for i in range(n):
                crop = _crop(img, x0, x1, rng, int(rng.integers(64, 113)))
                pil = Image.fromarray(crop)
                if name in GREY:
                    pil = pil.convert("L")
                pil.save(os.path.join(folder, f"{name}_{i:04d}.JPEG"), quality=90)
    return root
