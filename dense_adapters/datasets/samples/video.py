"""A video-denoising sample in DAVIS 2017's layout: short clips filmed by a virtual camera that pans and zooms
over real photos (scikit-image's bundled files), so the video configs, tools and tests run offline.

    <out>/video/JPEGImages/480p/<sequence>/00000.jpg ...   (frames, JPEG quality 95, as DAVIS ships them)
    <out>/video/ImageSets/2017/{train,val}.txt             (sequence names per split)

Each frame is the photo resampled (bicubic, after a Gaussian pre-filter against aliasing where the camera
zooms out) through an affine camera whose centre and scale move linearly over the clip: real image content with
real sub-pixel motion between frames, which a multi-frame denoiser can exploit. The frames are clean; the
pipelines add the noise (Gaussian, sigma 30 on 0..255 for DAVIS). The name ``480p`` keeps DAVIS's folder
layout; the sample's frames are smaller (128 x 208: DAVIS's 128 x 128 training crops fit, so the DAVIS configs
run on it with ``--data-root`` alone).
"""
from __future__ import annotations

import os

import numpy as np

from . import register_sample

# sequence -> (photo, (centre y, x) start -> end as fractions of the photo, scale start -> end in photo
# pixels per frame pixel)
CAMERAS = {
    "astronaut-pan": ("astronaut", ((0.35, 0.30), (0.45, 0.62)), (1.6, 1.5)),
    "rocket-zoom": ("rocket", ((0.55, 0.50), (0.45, 0.45)), (1.0, 1.6)),
    "coffee-pan": ("coffee", ((0.40, 0.35), (0.58, 0.62)), (1.2, 1.3)),
    "hubble-drift": ("hubble", ((0.30, 0.30), (0.55, 0.62)), (2.0, 1.6)),
    "ihc-pan": ("immunohistochemistry", ((0.60, 0.62), (0.38, 0.35)), (1.5, 1.5)),
    "chelsea-zoom": ("chelsea", ((0.45, 0.45), (0.42, 0.55)), (1.1, 0.9)),
    "motorcycle-pan": ("motorcycle_left", ((0.50, 0.30), (0.55, 0.65)), (1.8, 1.8)),
}
TRAIN = ("astronaut-pan", "rocket-zoom", "coffee-pan", "hubble-drift", "ihc-pan")
VAL = ("chelsea-zoom", "motorcycle-pan")


def load_photo(name: str) -> np.ndarray:
    """A bundled scikit-image photo, uint8 [H, W, 3] (only the files of this sample: no rescaling needed)."""
    import skimage.data as d

    if name == "motorcycle_left":
        return d.stereo_motorcycle()[0]
    return getattr(d, "hubble_deep_field" if name == "hubble" else name)()[..., :3]


def film(photo: np.ndarray, centre: tuple, scale: tuple, num_frames: int, size: tuple[int, int]) -> np.ndarray:
    """uint8 frames [T, h, w, 3] of ``photo`` seen by a camera moving linearly from ``centre[0]`` to
    ``centre[1]`` (fractions of the photo) with scale ``scale[0]`` -> ``scale[1]`` (photo px per frame px)."""
    from skimage.filters import gaussian
    from skimage.transform import AffineTransform, warp

    H, W = photo.shape[:2]
    h, w = size
    img = photo.astype(np.float64) / 255.0
    frames = []
    for t in np.linspace(0.0, 1.0, num_frames):
        cy = H * ((1 - t) * centre[0][0] + t * centre[1][0])
        cx = W * ((1 - t) * centre[0][1] + t * centre[1][1])
        s = (1 - t) * scale[0] + t * scale[1]
        sigma = 0.5 * (s - 1) if s > 1 else 0.0
        # work on the part of the photo the camera sees (+ a margin for the filters): same pixels, less work
        m = int(4 * sigma) + 4
        y0, x0 = max(int(cy - s * h / 2) - m, 0), max(int(cx - s * w / 2) - m, 0)
        y1, x1 = min(int(cy + s * h / 2) + m + 1, H), min(int(cx + s * w / 2) + m + 1, W)
        src = img[y0:y1, x0:x1]
        src = gaussian(src, sigma=sigma, channel_axis=-1) if sigma else src
        # output pixel (x, y) -> photo (cx + s (x - w/2), cy + s (y - h/2)); warp takes that inverse map
        cam = AffineTransform(scale=s, translation=(cx - s * w / 2 - x0, cy - s * h / 2 - y0))
        out = warp(src, cam, output_shape=(h, w), order=3, mode="reflect")
        frames.append(np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8))
    return np.stack(frames)


@register_sample("video")
def make_video_sample(out_dir: str, num_frames: int = 12, size: tuple[int, int] = (128, 208)) -> str:
    """Write the sample under ``out_dir/video`` (7 sequences of ``num_frames`` frames of ``size`` (h, w): 5 for
    training, 2 held out) and return that data root."""
    from PIL import Image

    root = os.path.join(out_dir, "video")
    for name, (photo, centre, scale) in CAMERAS.items():
        folder = os.path.join(root, "JPEGImages", "480p", name)
        os.makedirs(folder, exist_ok=True)
        for i, frame in enumerate(film(load_photo(photo), centre, scale, num_frames, size)):
            Image.fromarray(frame).save(os.path.join(folder, f"{i:05d}.jpg"), quality=95)
    sets = os.path.join(root, "ImageSets", "2017")
    os.makedirs(sets, exist_ok=True)
    for split, names in (("train", TRAIN), ("val", VAL)):
        with open(os.path.join(sets, f"{split}.txt"), "w") as f:
            f.write("".join(f"{n}\n" for n in names))
    return root
