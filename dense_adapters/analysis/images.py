"""Image loading and preprocessing for the analysis tools (files, folders, or scikit-image's sample photos)."""
from __future__ import annotations

import os
from typing import Optional, Sequence, Union

import numpy as np
import torch
from PIL import Image
from torch import Tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
DEFAULT_SAMPLES = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle_left")


def load_images(sources: Optional[Sequence[str]] = None, max_images: Optional[int] = None,
                sample_names: Sequence[str] = DEFAULT_SAMPLES) -> list[tuple[str, np.ndarray]]:
    """(name, uint8 [H, W, 3]) pairs from image files and folders; none given: scikit-image sample photos.

    A source that is not a file or folder is looked up among ``dense_adapters.datasets.samples.photos()`` by name
    (e.g. ``chelsea``); ``sample_names`` picks the default photos (``'all'`` in sources: every sample photo).
    """
    out: list[tuple[str, np.ndarray]] = []
    photos = None
    for src in (list(sources) if sources else list(sample_names)):
        if os.path.isdir(src):
            files = sorted(f for f in os.listdir(src) if f.lower().endswith(IMAGE_EXTS))
            if not files:
                raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTS)}) in folder {src!r}")
            out += [(os.path.splitext(f)[0], _read(os.path.join(src, f))) for f in files]
        elif os.path.isfile(src):
            out.append((os.path.splitext(os.path.basename(src))[0], _read(src)))
        else:
            if photos is None:
                from ..datasets.samples import photos as _photos

                photos = _photos()
            names = sorted(photos) if src == "all" else [src]
            for name in names:
                if name not in photos:
                    raise FileNotFoundError(f"{src!r} is neither an image file, a folder, nor a sample photo "
                                            f"({', '.join(sorted(photos))})")
                out.append((name, photos[name]))
    return out[:max_images] if max_images else out


def _read(path: str) -> np.ndarray:
    from ..imageio import read_rgb

    return read_rgb(path)  # 16-bit scaled; a bad file is one DataError line


def fit_size(hw: tuple[int, int], size: Union[int, Sequence[int]], patch: int) -> tuple[int, int]:
    """Target (H, W), multiples of ``patch``: ``size`` int = long side (aspect kept), (H, W) = exact."""
    if isinstance(size, int) or len(size) == 1:
        s = int(size if isinstance(size, int) else size[0])
        scale = s / max(hw)
        th, tw = hw[0] * scale, hw[1] * scale
    else:
        th, tw = size
    return max(patch, round(th / patch) * patch), max(patch, round(tw / patch) * patch)


def preprocess(img: np.ndarray, size: Union[int, Sequence[int]], patch: int,
               mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> tuple[Tensor, np.ndarray]:
    """uint8 [H, W, 3] -> (normalized tensor [1, 3, H', W'], resized uint8 image [H', W', 3]) with H', W' % patch == 0."""
    th, tw = fit_size(img.shape[:2], size, patch)
    resized = np.array(Image.fromarray(img).resize((tw, th), Image.BICUBIC))
    x = torch.from_numpy(resized).float().div(255).permute(2, 0, 1)  # [3, H', W']
    x = (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    return x[None], resized
