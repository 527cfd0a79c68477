"""Denoising data: SIDD sRGB pairs (folders or the validation .mat blocks), plain noisy/gt folders, and clean
images with synthetic noise; paired transforms (crop, flips) and packing for :class:`dense_adapters.Restorer`.

Every sample reaching the model is ``dict(inputs=uint8 [3, H, W] noisy, data_samples=BaseDataElement(
gt_img=uint8 [3, H, W], metainfo=...))``.
"""
from __future__ import annotations

import glob
import os
from typing import Optional, Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.dataset import BaseDataset
from mmengine.structures import BaseDataElement

from ..errors import DataError, UserError
from ..registry import DATASETS, TRANSFORMS

IMG_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def list_images(folder: str) -> list[str]:
    """Sorted image files directly inside ``folder`` (case-insensitive extensions)."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"image folder {folder!r} does not exist: check data_root and the folder names")
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(IMG_EXTS))


def read_rgb(path: str) -> np.ndarray:
    """uint8 [H, W, 3] RGB (grey images are repeated, alpha dropped, 16-bit scaled; one line for a bad file)."""
    from ..imageio import read_rgb as _read

    return _read(path)


def sidd_pairs(root: str) -> list[tuple[str, str]]:
    """(noisy, gt) paths of a SIDD tree: ``<root>/Data/<scene>/{NOISY,GT}_SRGB_<nnn>.PNG`` (``Data/`` optional)."""
    data = os.path.join(root, "Data") if os.path.isdir(os.path.join(root, "Data")) else root
    pairs = []
    for noisy in sorted(glob.glob(os.path.join(data, "*", "NOISY_SRGB_*.*"))):
        gt = os.path.join(os.path.dirname(noisy), os.path.basename(noisy).replace("NOISY_SRGB_", "GT_SRGB_", 1))
        if not os.path.isfile(gt):
            raise FileNotFoundError(f"SIDD pair incomplete: {noisy} has no {os.path.basename(gt)} beside it")
        pairs.append((noisy, gt))
    return pairs


def folder_pairs(noisy_dir: str, gt_dir: str) -> list[tuple[str, str]]:
    """Pair files of two folders by file stem; any file without a partner is an error."""
    noisy = {os.path.splitext(os.path.basename(p))[0]: p for p in list_images(noisy_dir)}
    gt = {os.path.splitext(os.path.basename(p))[0]: p for p in list_images(gt_dir)}
    if noisy.keys() != gt.keys():
        only_n, only_g = sorted(noisy.keys() - gt.keys()), sorted(gt.keys() - noisy.keys())
        raise DataError(f"unpaired files: {only_n[:5]} only in {noisy_dir}, {only_g[:5]} only in {gt_dir}: "
                         "every noisy image needs a ground truth with the same file name")
    return [(noisy[k], gt[k]) for k in sorted(noisy)]


# -------------------------------------------------------------------------------------------- datasets
@DATASETS.register_module()
class DenoisePairDataset(BaseDataset):
    """Noisy/clean pairs from disk (``type='dense_adapters.DenoisePairDataset'``).

    Args:
        data_root: a SIDD(-Medium) folder (``Data/<scene>/{NOISY,GT}_SRGB_*.PNG``) or a folder holding
            ``noisy_dir`` and ``gt_dir`` with files of the same names (Uformer's pre-cropped SIDD patches:
            ``noisy_dir='input', gt_dir='groundtruth'``).
        subdir: the pairs live in ``data_root/subdir`` (one data_root can then serve train and val sets).
        layout: ``'auto'`` (SIDD if ``NOISY_SRGB_`` files are found, else folders), ``'sidd'`` or ``'folders'``.
    """

    def __init__(self, data_root: str, layout: str = "auto", subdir: str = "", noisy_dir: str = "noisy",
                 gt_dir: str = "gt", **kwargs) -> None:
        if layout not in ("auto", "sidd", "folders"):
            raise UserError(f"unknown layout {layout!r}: use 'auto', 'sidd' or 'folders'")
        self.layout, self.subdir, self.noisy_dir, self.gt_dir = layout, subdir, noisy_dir, gt_dir
        super().__init__(data_root=data_root, **kwargs)

    def load_data_list(self) -> list[dict]:
        root = os.path.join(self.data_root, self.subdir)
        if not os.path.isdir(root):
            raise FileNotFoundError(f"denoising data folder {root!r} does not exist: check data_root/subdir")
        pairs = sidd_pairs(root) if self.layout in ("auto", "sidd") else []
        if not pairs and self.layout == "sidd":
            raise FileNotFoundError(f"no SIDD pairs (Data/<scene>/NOISY_SRGB_*.PNG) under {root!r}")
        if not pairs:
            pairs = folder_pairs(os.path.join(root, self.noisy_dir), os.path.join(root, self.gt_dir))
        if not pairs:
            raise FileNotFoundError(f"no image pairs under {root!r} ({self.noisy_dir}/ and {self.gt_dir}/ are empty)")
        return [dict(noisy_path=n, gt_path=g) for n, g in pairs]


@DATASETS.register_module()
class SIDDValMatDataset(BaseDataset):
    """SIDD's validation blocks: ``ValidationNoisyBlocksSrgb.mat`` / ``ValidationGtBlocksSrgb.mat`` (uint8
    [40, 32, 256, 256, 3] each, loaded with scipy.io.loadmat): 1280 samples, block-major order."""

    def __init__(self, data_root: str = "", noisy_mat: str = "ValidationNoisyBlocksSrgb.mat",
                 gt_mat: str = "ValidationGtBlocksSrgb.mat", **kwargs) -> None:
        self.noisy_mat, self.gt_mat = noisy_mat, gt_mat
        kwargs.setdefault("serialize_data", False)
        super().__init__(data_root=data_root, **kwargs)

    @staticmethod
    def _load(path: str) -> np.ndarray:
        import scipy.io

        if not os.path.isfile(path):
            raise FileNotFoundError(f"SIDD validation file {path!r} does not exist")
        try:
            mat = scipy.io.loadmat(path)
        except Exception as e:  # scipy raises several types for corrupt files
            raise DataError(f"cannot read {path!r} as a MATLAB .mat file ({type(e).__name__}: {e})") from e
        keys = [k for k in mat if not k.startswith("__")]
        arr = next((mat[k] for k in keys if isinstance(mat[k], np.ndarray) and mat[k].ndim >= 4), None)
        if arr is None or arr.shape[-1] != 3:
            raise DataError(f"{path!r} holds no [..., H, W, 3] image blocks (keys {keys}): expected SIDD's "
                             "ValidationNoisyBlocksSrgb/ValidationGtBlocksSrgb")
        if arr.dtype != np.uint8:
            arr = np.clip(np.round(arr * (255.0 if arr.max() <= 1.0 else 1.0)), 0, 255).astype(np.uint8)
        return arr.reshape(-1, *arr.shape[-3:])  # [N, H, W, 3]

    def load_data_list(self) -> list[dict]:
        self._noisy = self._load(os.path.join(self.data_root, self.noisy_mat))
        self._gt = self._load(os.path.join(self.data_root, self.gt_mat))
        if self._noisy.shape != self._gt.shape:
            raise DataError(f"noisy blocks {self._noisy.shape} and ground-truth blocks {self._gt.shape} differ")
        return [dict(block=i, img_path=f"{self.noisy_mat}#{i}") for i in range(len(self._noisy))]

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        info["noisy_img"], info["gt_img"] = self._noisy[info["block"]], self._gt[info["block"]]
        return info


@DATASETS.register_module()
class SyntheticNoiseDataset(BaseDataset):
    """Clean images of a folder; the pipeline's :class:`AddSyntheticNoise` makes the noisy input.

    Each sample carries ``noise_seed`` = ``seed + index`` when ``seed`` is set (fixed held-out noise), else None.
    """

    def __init__(self, data_root: str, img_dir: str = "", seed: Optional[int] = None, **kwargs) -> None:
        self.img_dir, self.seed = img_dir, seed
        super().__init__(data_root=data_root, **kwargs)

    def load_data_list(self) -> list[dict]:
        files = list_images(os.path.join(self.data_root, self.img_dir))
        if not files:
            raise FileNotFoundError(f"no images in {os.path.join(self.data_root, self.img_dir)!r}")
        return [dict(gt_path=p, noise_seed=None if self.seed is None else self.seed + i) for i, p in enumerate(files)]


# -------------------------------------------------------------------------------------------- transforms
@TRANSFORMS.register_module()
class LoadImagePair(BaseTransform):
    """Read ``noisy_path``/``gt_path`` (or keep arrays already in ``noisy_img``/``gt_img``) into uint8 HWC RGB
    ``img`` (noisy) and ``gt``; a sample with only a ground truth gets ``img`` later (AddSyntheticNoise)."""

    def transform(self, results: dict) -> dict:
        gt = results.pop("gt_img", None)
        results["gt"] = gt if gt is not None else read_rgb(results["gt_path"])
        noisy = results.pop("noisy_img", None)
        if noisy is None and results.get("noisy_path"):
            noisy = read_rgb(results["noisy_path"])
        if noisy is not None:
            if noisy.shape != results["gt"].shape:
                raise DataError(f"noisy {noisy.shape} and ground truth {results['gt'].shape} differ: "
                                 f"{results.get('noisy_path', '')} / {results.get('gt_path', '')}")
            results["img"] = noisy
        results.setdefault("img_path", results.get("noisy_path") or results.get("gt_path"))
        results["ori_shape"] = results["gt"].shape[:2]
        return results


@TRANSFORMS.register_module()
class AddSyntheticNoise(BaseTransform):
    """Make ``img`` from the clean ``gt`` (an image [H, W, 3] or frames [T, H, W, 3], uint8).

    ``'gaussian'``: x + N(0, sigma^2), sigma on the 0..255 scale. ``'poisson_gaussian'``: with x in [0, 1],
    ``a * Poisson(x / a) + N(0, b^2)`` (signal-dependent shot noise ``a``, read noise ``b``).
    A ``noise_seed`` in the sample fixes the noise (validation); otherwise it is random.

    Args:
        clip, quantize: clip to 0..255 and round to uint8 (the image default, as a saved noisy image). With both
            False the noisy input stays float32 on the 0..255 scale, unclipped: the video-denoising protocol
            (FastDVDnet, VRT add N(0, sigma^2) to the float frames and feed them as they are).
    """

    def __init__(self, mode: str = "gaussian", sigma: float = 25.0, a: float = 0.01, b: float = 0.02,
                 clip: bool = True, quantize: bool = True) -> None:
        if mode not in ("gaussian", "poisson_gaussian"):
            raise UserError(f"unknown noise mode {mode!r}: use 'gaussian' or 'poisson_gaussian'")
        if sigma < 0 or a <= 0 or b < 0:
            raise UserError(f"noise levels must be non-negative (a > 0): sigma={sigma}, a={a}, b={b}")
        if quantize and not clip:
            raise UserError("AddSyntheticNoise(quantize=True) needs clip=True: uint8 holds 0..255 only")
        self.mode, self.sigma, self.a, self.b = mode, sigma, a, b
        self.clip, self.quantize = clip, quantize

    def transform(self, results: dict) -> dict:
        rng = np.random.default_rng(results.get("noise_seed"))
        x = results["gt"].astype(np.float64) / 255.0
        if self.mode == "gaussian":
            y = x + rng.normal(0.0, self.sigma / 255.0, x.shape)
        else:
            y = self.a * rng.poisson(x / self.a) + rng.normal(0.0, self.b, x.shape)
        y = y * 255.0
        if self.clip:
            y = np.clip(y, 0, 255)
        results["img"] = np.round(y).astype(np.uint8) if self.quantize else y.astype(np.float32)
        return results


def _frame_hw(arr: np.ndarray) -> tuple[int, int]:
    """(H, W) of an image [H, W, C] or of frames [T, H, W, C]."""
    return tuple(arr.shape[-3:-1])


@TRANSFORMS.register_module()
class PairedRandomCrop(BaseTransform):
    """The same random ``crop_size`` window of ``img`` and ``gt`` (images smaller than it are an error).

    Works on images [H, W, C] and on frames [T, H, W, C]: one window for every frame of a clip."""

    def __init__(self, crop_size: int | Sequence[int] = 128) -> None:
        self.crop = (crop_size, crop_size) if isinstance(crop_size, int) else tuple(crop_size)

    def transform(self, results: dict) -> dict:
        H, W = _frame_hw(results["gt"])
        ch, cw = self.crop
        if H < ch or W < cw:
            raise DataError(f"image {H}x{W} ({results.get('img_path')}) is smaller than the crop {ch}x{cw}: "
                             "lower crop_size")
        top, left = np.random.randint(0, H - ch + 1), np.random.randint(0, W - cw + 1)
        for k in ("img", "gt"):
            if k in results:  # clean-only data gets its noise after the crop
                results[k] = results[k][..., top : top + ch, left : left + cw, :]
        return results


@TRANSFORMS.register_module()
class PairedRandomFlip(BaseTransform):
    """Flip ``img`` and ``gt`` together: each of horizontal, vertical and diagonal (transpose) with ``prob``;
    the three together give Uformer's 8 dihedral augmentations. On frames [T, H, W, C] one draw flips every
    frame alike; ``'temporal'`` (not a default) reverses the frame order."""

    DIRECTIONS = ("horizontal", "vertical", "diagonal", "temporal")

    def __init__(self, prob: float = 0.5, directions: Sequence[str] = ("horizontal", "vertical", "diagonal")) -> None:
        bad = set(directions) - set(self.DIRECTIONS)
        if bad:
            raise UserError(f"unknown flip directions {sorted(bad)}: use {', '.join(self.DIRECTIONS)}")
        self.prob, self.directions = prob, tuple(directions)

    @staticmethod
    def flip(im: np.ndarray, direction: str) -> np.ndarray:
        if direction == "horizontal":
            return im[..., :, ::-1, :]
        if direction == "vertical":
            return im[..., ::-1, :, :]
        if direction == "diagonal":
            return np.swapaxes(im, -3, -2)
        if im.ndim != 4:
            raise UserError(f"a temporal flip needs frames [T, H, W, C], got shape {im.shape}")
        return im[::-1]

    def transform(self, results: dict) -> dict:
        for d in self.directions:
            if np.random.rand() < self.prob:
                for k in ("img", "gt"):
                    if k in results:
                        results[k] = np.ascontiguousarray(self.flip(results[k], d))
                if d == "temporal" and "frame_paths" in results:
                    results["frame_paths"] = list(results["frame_paths"])[::-1]
        return results


@TRANSFORMS.register_module()
class PackRestorationInputs(BaseTransform):
    """``img``/``gt`` -> ``dict(inputs=[3, H, W], data_samples=BaseDataElement(gt_img=...))``; frames
    [T, H, W, 3] become [T, 3, H, W]. ``gt`` is uint8; ``img`` uint8 or float32 (0..255, unclipped noise)."""

    META_KEYS = ("img_path", "gt_path", "ori_shape", "sample_idx", "noise_seed", "sequence", "frame_paths",
                 "frame_start")

    def transform(self, results: dict) -> dict:
        if "img" not in results:
            raise DataError("no noisy image in the sample: add AddSyntheticNoise to the pipeline of clean-only data")
        to_t = lambda a: torch.from_numpy(np.ascontiguousarray(np.moveaxis(a, -1, -3)))  # noqa: E731
        meta = {k: results[k] for k in self.META_KEYS if k in results}
        meta["img_shape"] = _frame_hw(results["img"])
        sample = BaseDataElement(metainfo=meta)
        sample.gt_img = to_t(results["gt"])
        return dict(inputs=to_t(results["img"]), data_samples=sample)
