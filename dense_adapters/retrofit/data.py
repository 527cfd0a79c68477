"""Unlabelled images for the retrofit: a folder, random crops for training, centre crops for held-out evaluation.

Every training sample is a pure function of ``(seed, position)``: the dataset's length is the number of samples
the run draws (iterations x batch x processes) and position ``p`` shows image ``p mod n`` with crop and flip drawn
from ``numpy.random.default_rng([seed, p])``. With mmengine's ``DefaultSampler`` (one shuffled pass) a run resumed
from a checkpoint sees exactly the samples the uninterrupted run would, with or without worker processes.
"""
from __future__ import annotations

import math
import os
from typing import Optional, Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from ..analysis.images import IMAGE_EXTS, IMAGENET_MEAN, IMAGENET_STD
from ..errors import DataError


def list_images(root: str) -> list[str]:
    """Image files under ``root`` (recursive, sorted); one line if there are none."""
    if not os.path.isdir(root):
        raise DataError(f"image folder not found: {root}: give a folder of unlabelled images (any sizes, RGB or not)")
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.lower().endswith(IMAGE_EXTS))
    if not files:
        raise DataError(f"no images ({', '.join(IMAGE_EXTS)}) under {root}: give a folder of unlabelled images")
    return files


def split_heldout(files: Sequence[str], val_files: Optional[Sequence[str]] = None, fraction: float = 0.1,
                  min_val: int = 2) -> tuple[list[str], list[str]]:
    """(train, held-out): ``val_files`` if given, else every ``1/fraction``-th image (at least ``min_val``)."""
    files = list(files)
    if val_files:
        return files, list(val_files)
    n_val = max(min_val, int(round(len(files) * fraction)))
    if len(files) < n_val + 1:
        raise DataError(f"{len(files)} images are too few to hold {n_val} out for evaluation and train on the rest: "
                        "add images or pass a separate --val-images folder")
    step = len(files) / n_val
    val_idx = {int(k * step) for k in range(n_val)}
    return [f for i, f in enumerate(files) if i not in val_idx], [files[i] for i in sorted(val_idx)]


def read_rgb(path: str, draft: Optional[int] = None) -> Image.Image:
    """RGB PIL image (grey, palette, RGBA, 16-bit all converted); one line naming the file if it is unreadable."""
    from ..imageio import open_rgb

    img = open_rgb(path, draft=draft)  # large JPEGs decoded at a reduced scale; 16-bit scaled; one line if broken
    if min(img.size) < 2:
        raise DataError(f"image {path} is {img.size[0]}x{img.size[1]} pixels: too small to crop from")
    return img


def to_tensor(img: Image.Image, normalize: bool = True) -> Tensor:
    """[3, H, W] float: ImageNet-normalised (ViTs) or in [0, 1] (restorers)."""
    x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float().div_(255)
    if normalize:
        x = (x - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None]
    return x


def random_resized_crop(img: Image.Image, size: int, rng: np.random.Generator, scale=(0.35, 1.0),
                        ratio=(3 / 4, 4 / 3)) -> Image.Image:
    """torchvision's RandomResizedCrop (area in ``scale``, log-uniform aspect) drawn from ``rng``, plus a flip."""
    W, H = img.size
    for _ in range(10):
        area = H * W * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        w, h = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
        if 0 < w <= W and 0 < h <= H:
            left, top = int(rng.integers(0, W - w + 1)), int(rng.integers(0, H - h + 1))
            break
    else:  # fall back to the centre crop of the allowed aspect
        w, h = min(W, H), min(W, H)
        left, top = (W - w) // 2, (H - h) // 2
    out = img.resize((size, size), Image.BICUBIC, box=(left, top, left + w, top + h))
    return out.transpose(Image.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else out


def center_crop(img: Image.Image, size: int) -> Image.Image:
    """Resize the short side to ``size`` and take the centre square."""
    W, H = img.size
    s = size / min(W, H)
    w, h = max(size, round(W * s)), max(size, round(H * s))
    img = img.resize((w, h), Image.BICUBIC)
    left, top = (w - size) // 2, (h - size) // 2
    return img.crop((left, top, left + size, top + size))


class RetrofitImages(Dataset):
    """``length`` training samples ``{'inputs': [3, size, size]}`` drawn from ``files`` (see the module doc).

    ``normalize``: ImageNet mean/std (ViTs) or raw [0, 1] (restorers); ``noise_sigma`` > 0 adds Gaussian noise
    of that standard deviation (0..1 scale) to the input, drawn from the same per-sample generator (restorers).
    """

    def __init__(self, files: Sequence[str], size: int, length: int, seed: int = 0, normalize: bool = True,
                 noise_sigma: float = 0.0, scale: tuple[float, float] = (0.35, 1.0)) -> None:
        if not files:
            raise DataError("no training images")
        self.files, self.size, self.length, self.seed = list(files), int(size), int(length), int(seed)
        self.normalize, self.noise_sigma, self.scale = normalize, float(noise_sigma), scale

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, pos: int) -> dict:
        rng = np.random.default_rng([self.seed, int(pos)])
        img = read_rgb(self.files[int(pos) % len(self.files)], draft=4 * self.size)
        x = to_tensor(random_resized_crop(img, self.size, rng, self.scale), self.normalize)
        if self.noise_sigma > 0:
            noise = rng.standard_normal(x.shape, dtype=np.float32) * self.noise_sigma
            x = x + torch.from_numpy(noise)
        return {"inputs": x}


def heldout_batches(files: Sequence[str], size: int, batch_size: int, normalize: bool = True,
                    noise_sigma: float = 0.0, seed: int = 12345) -> list[Tensor]:
    """Centre crops of the held-out images in batches [B, 3, size, size] (fixed noise for restorers)."""
    xs = []
    for j, f in enumerate(files):
        x = to_tensor(center_crop(read_rgb(f, draft=4 * size), size), normalize)
        if noise_sigma > 0:
            g = np.random.default_rng([seed, j])
            x = x + torch.from_numpy(g.standard_normal(x.shape, dtype=np.float32) * noise_sigma)
        xs.append(x)
    return [torch.stack(xs[i : i + batch_size]) for i in range(0, len(xs), batch_size)]
