"""An ADE20K-format sample: real photos with colour-prototype pseudo-labels snapped to superpixels.

The labels are not human annotations: each SLIC superpixel takes the class of the nearest of a few colour
prototypes (in Lab space). They follow image regions and are learnable, which is what a pipeline check needs.
Layout as ADEChallengeData2016: images/{training,validation}/*.jpg, annotations/{training,validation}/*.png with
0 = other (ignored by ``reduce_zero_label``) and ADE20K class ids 1..150.
"""
from __future__ import annotations

import os

import numpy as np

from . import photos, register_sample

# ADE20K id (1-based, as stored in the PNGs) -> prototype RGB colour
PROTOTYPES = {
    1: (200, 200, 200),  # wall: light grey
    3: (110, 160, 220),  # sky: blue
    5: (60, 110, 40),  # tree: green
    13: (215, 160, 130),  # person: skin tone
    14: (120, 90, 60),  # earth: brown
    21: (160, 30, 30),  # car: red
    23: (30, 30, 30),  # painting: near black
}
TRAIN = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "motorcycle_left", "camera", "coins")
VAL = ("hubble", "retina", "motorcycle_right", "clock")


def pseudo_label(img: np.ndarray, n_segments: int = 120) -> np.ndarray:
    """uint8 [H, W] ADE ids: each superpixel gets the nearest colour prototype of its mean Lab colour."""
    from skimage.color import rgb2lab
    from skimage.segmentation import slic

    lab = rgb2lab(img)
    seg = slic(img, n_segments=n_segments, compactness=10, start_label=0)
    ids = np.array(list(PROTOTYPES), dtype=np.uint8)
    proto = rgb2lab(np.array(list(PROTOTYPES.values()), dtype=np.uint8)[None])[0]  # [K, 3]
    label = np.zeros(img.shape[:2], np.uint8)
    for s in range(seg.max() + 1):
        m = seg == s
        if m.any():
            label[m] = ids[np.argmin(((proto - lab[m].mean(0)) ** 2).sum(1))]
    return label


@register_sample("ade")
def make_ade_sample(out_dir: str) -> str:
    """Write the sample under ``out_dir/ADEChallengeData2016`` and return that data root."""
    from PIL import Image

    root = os.path.join(out_dir, "ADEChallengeData2016")
    ims = photos(max_side=384)
    for split, names in (("training", TRAIN), ("validation", VAL)):
        os.makedirs(os.path.join(root, "images", split), exist_ok=True)
        os.makedirs(os.path.join(root, "annotations", split), exist_ok=True)
        for name in names:
            img = ims[name]
            Image.fromarray(img).save(os.path.join(root, "images", split, f"{name}.jpg"), quality=92)
            Image.fromarray(pseudo_label(img)).save(os.path.join(root, "annotations", split, f"{name}.png"))
    return root
