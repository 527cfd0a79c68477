"""Image classification data: ImageNet's folder layout (``train/<wnid>/*.JPEG``, ``val/<wnid>/*.JPEG``) and any
image-folder dataset, timm's ImageNet transforms, and packing for the classifiers of ``dense_adapters.models``.

Every sample reaching a model is ``dict(inputs=uint8 [3, H, W] RGB, data_samples=BaseDataElement(gt_label=int64 [1],
metainfo=dict(img_path, ori_shape, img_shape, sample_idx)))``. Normalisation, random erasing and Mixup/CutMix run
on whole batches in :class:`dense_adapters.ClsDataPreprocessor` (on the GPU when there is one), as timm's
prefetching loader does.

Problems with the data end in one :class:`~dense_adapters.errors.DataError` line that names the folder or file.
"""
from __future__ import annotations

import os
import random
from typing import Optional, Sequence, Union

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.dataset import BaseDataset
from mmengine.structures import BaseDataElement

from ..errors import DataError, UserError
from ..registry import DATASETS, TRANSFORMS

IMG_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
SUBSETS = ("all", "heldout", "rest")


def _is_image(name: str, exts: Sequence[str]) -> bool:
    return not name.startswith(".") and name.lower().endswith(tuple(exts))


def _entries(folder: str) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as it:
            return sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
    except FileNotFoundError:
        raise DataError(f"image folder not found: {folder}: put the split there (ImageNet: train/<wnid>/*.JPEG, "
                        "val/<wnid>/*.JPEG) or pass --data-root DIR") from None
    except NotADirectoryError:
        raise DataError(f"{folder} is a file, not a folder of class folders: check data_root/data_prefix") from None


def class_folders(folder: str) -> list[str]:
    """Sorted names of the class folders directly inside ``folder`` (hidden ones skipped)."""
    return [e.name for e in _entries(folder) if e.is_dir()]


def read_class_list(path: str) -> list[str]:
    """Class names of a text file, one per line (blank lines and ``#`` comments skipped)."""
    if not os.path.isfile(path):
        raise DataError(f"class list not found: {path}: give a text file with one class (folder) name per line")
    with open(path, encoding="utf-8") as f:
        names = [ln.split("#", 1)[0].strip() for ln in f]
    names = [n for n in names if n]
    if not names:
        raise DataError(f"class list {path} names no class: write one class (folder) name per line")
    return names


def scan_image_folder(folder: str, classes: Sequence[str], exts: Sequence[str] = IMG_EXTS,
                      allow_empty: bool = False) -> list[tuple[str, int]]:
    """(path, label) of every image in ``folder/<class>/``, labels by position in ``classes``, sorted by class
    then file name. Class folders missing from ``folder`` are allowed (a split may lack classes); folders that are
    not in ``classes``, images outside class folders and (unless ``allow_empty``) empty class folders are errors."""
    entries = _entries(folder)
    loose = [e.name for e in entries if e.is_file() and _is_image(e.name, exts)]
    dirs = [e.name for e in entries if e.is_dir()]
    if loose and not dirs:
        raise DataError(
            f"{folder} holds {len(loose)} images but no class folders: an image-folder split needs "
            f"{folder}/<class>/<image> (ImageNet's flat val/ needs its images moved into val/<wnid>/, or "
            "ann_file=<list of 'path label' lines>)")
    if loose:
        raise DataError(f"{folder} has {len(loose)} images outside class folders (e.g. {loose[0]}): move them into "
                        f"{folder}/<class>/ or remove them")
    index = {c: i for i, c in enumerate(classes)}
    unknown = [d for d in dirs if d not in index]
    if unknown:
        raise DataError(f"{folder}/{unknown[0]} is not one of the {len(classes)} classes "
                        f"({len(unknown)} such folders): the split's classes must be those of the class list "
                        "(class_dir / classes of the dataset)")
    samples, empty = [], []
    for d in dirs:
        files = [e.name for e in _entries(os.path.join(folder, d)) if e.is_file() and _is_image(e.name, exts)]
        if not files:
            empty.append(d)
        samples.extend((os.path.join(folder, d, f), index[d]) for f in files)
    if empty and not allow_empty:
        raise DataError(f"class folder {folder}/{empty[0]} holds no images ({len(empty)} empty class folders; "
                        f"extensions {', '.join(exts)}): remove it, add images, or set allow_empty=True")
    if not samples:
        raise DataError(f"no images in {folder}/<class>/ (extensions {', '.join(exts)}): check the folder or pass "
                        "--data-root DIR")
    return samples


def read_ann_file(path: str, img_dir: str, classes: Sequence[str]) -> list[tuple[str, int]]:
    """(path, label) from a list file of ``relative/path label`` lines; ``label`` is an index or a class name."""
    if not os.path.isfile(path):
        raise DataError(f"annotation file not found: {path}: give 'relative/path label' lines or drop ann_file")
    index = {c: i for i, c in enumerate(classes)}
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2:
                raise DataError(f"{path}:{n}: expected 'relative/path label', got {line.strip()!r}")
            name, lab = parts
            if lab.lstrip("-").isdigit():
                label = int(lab)
                if not 0 <= label < len(classes):
                    raise DataError(f"{path}:{n}: label {label} outside 0..{len(classes) - 1} ({len(classes)} classes)")
            elif lab in index:
                label = index[lab]
            else:
                raise DataError(f"{path}:{n}: {lab!r} is neither a class index nor one of the {len(classes)} classes")
            out.append((os.path.join(img_dir, name), label))
    if not out:
        raise DataError(f"annotation file {path} lists no image")
    return out


def split_heldout(samples: list[tuple[str, int]], per_class: int, seed: int = 0) -> tuple[list, list]:
    """Deterministic held-out split: ``per_class`` images of every class (a seeded draw) and the rest, each in the
    input order. The same seed always picks the same images, whatever the process or the machine."""
    by_class: dict[int, list[int]] = {}
    for i, (_, label) in enumerate(samples):
        by_class.setdefault(label, []).append(i)
    rng = random.Random(seed)
    held = set()
    for label in sorted(by_class):
        idx = by_class[label]
        if len(idx) <= per_class:
            raise DataError(f"class {label} has {len(idx)} images, too few to hold out {per_class} and train on the "
                            "rest: lower heldout_per_class")
        held.update(rng.sample(idx, per_class))
    return ([s for i, s in enumerate(samples) if i in held], [s for i, s in enumerate(samples) if i not in held])


@DATASETS.register_module()
class ImageFolderDataset(BaseDataset):
    """``type='dense_adapters.ImageFolderDataset'``: images in ``<data_root>/<data_prefix.img_path>/<class>/``.

    Args:
        data_root: e.g. ``'data/imagenet'``; ``data_prefix=dict(img_path='train')`` picks the split folder.
        classes: the class list: None (the sorted folder names of ``class_dir``), a list of names, or a text file
            (one name per line). Labels are positions in this list, so every split of a dataset must share it.
        class_dir: folder (relative to ``data_root``) whose sub-folders define the classes when ``classes`` is None;
            default: the split's own folder. Evaluation splits use ``class_dir='train'`` so that a split lacking
            a class still gets the training labels.
        ann_file: optional list of ``relative/path label`` lines (paths relative to the split folder) instead of
            scanning class folders, e.g. ImageNet's flat ``val/`` with a ``val.txt``.
        heldout_per_class, heldout_seed, subset: ``subset='heldout'`` keeps ``heldout_per_class`` images per class
            (a seeded draw), ``'rest'`` the others, ``'all'`` everything: a held-out split carved from ``train/``
            for model selection (the linear probe's head choice) that never touches ``val/``.
        extensions: image file endings (case-insensitive; ImageNet's are ``.JPEG``).
        allow_empty: accept class folders without images (otherwise an error naming the folder).
    """

    def __init__(self, data_root: str = "", data_prefix: Optional[dict] = None,
                 classes: Union[None, str, Sequence[str]] = None, class_dir: Optional[str] = None,
                 ann_file: str = "", heldout_per_class: int = 0, heldout_seed: int = 0, subset: str = "all",
                 extensions: Sequence[str] = IMG_EXTS, allow_empty: bool = False, **kwargs) -> None:
        if subset not in SUBSETS:
            raise UserError(f"subset must be one of {SUBSETS}, got {subset!r}")
        if subset != "all" and heldout_per_class <= 0:
            raise UserError(f"subset={subset!r} needs heldout_per_class > 0 (images held out per class)")
        self.classes_arg, self.class_dir, self.subset = classes, class_dir, subset
        self.heldout_per_class, self.heldout_seed = int(heldout_per_class), int(heldout_seed)
        self.extensions = tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)
        self.allow_empty = allow_empty
        super().__init__(data_root=data_root, data_prefix=data_prefix or dict(img_path=""), ann_file=ann_file,
                         **kwargs)

    def _class_list(self, img_dir: str) -> list[str]:
        c = self.classes_arg
        if isinstance(c, str):
            path = c if os.path.isabs(c) or not self.data_root else os.path.join(self.data_root, c)
            names = read_class_list(path)
        elif c is not None:
            names = [str(n) for n in c]
        else:
            src = img_dir if self.class_dir is None else os.path.join(self.data_root, self.class_dir)
            names = class_folders(src)
            if not names:
                raise DataError(f"no class folders in {src}: an image-folder dataset needs {src}/<class>/<image> "
                                "(or pass classes=[...] / a class list file)")
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise DataError(f"class {dup!r} is listed twice: class names must be unique")
        return names

    def load_data_list(self) -> list[dict]:
        img_dir = self.data_prefix.get("img_path", "") or self.data_root
        classes = self._class_list(img_dir)
        if self.ann_file:
            samples = read_ann_file(self.ann_file, img_dir, classes)
        else:
            samples = scan_image_folder(img_dir, classes, self.extensions, self.allow_empty)
        if self.subset != "all":
            held, rest = split_heldout(samples, self.heldout_per_class, self.heldout_seed)
            samples = held if self.subset == "heldout" else rest
        self._metainfo["classes"] = tuple(classes)
        return [dict(img_path=p, gt_label=label) for p, label in samples]

    def get_gt_labels(self) -> np.ndarray:
        """Labels of all samples, int64 [N]."""
        return np.array([self.get_data_info(i)["gt_label"] for i in range(len(self))], dtype=np.int64)


def _posterize(img, bits_to_keep: int, **_):
    """timm's posterize with Pillow's pre-10 meaning of 0 bits kept (a black image). RandAugment's
    ``PosterizeIncreasing`` asks for 0 bits at magnitude 10, which ``rand-m9-mstd0.5`` reaches (magnitude noise
    clipped at 10); Pillow >= 10 raises ``ValueError: bits must be between or equal to 1 and 8`` there."""
    from PIL import Image, ImageOps

    if bits_to_keep >= 8:
        return img
    if bits_to_keep <= 0:
        return Image.new(img.mode, img.size)
    return ImageOps.posterize(img, bits_to_keep)


def _fix_posterize(tf) -> int:
    """Point the posterize ops of timm's RandAugment / AutoAugment / AugMix inside ``tf`` (a Compose we built) at
    :func:`_posterize`; returns how many ops were changed. Only these objects change, nothing global."""
    from timm.data import auto_augment as aa

    ops = []
    for t in getattr(tf, "transforms", [tf]):
        ops += list(getattr(t, "ops", []))
        for sub in getattr(t, "policy", []):
            ops += list(sub)
    n = 0
    for op in ops:
        if getattr(op, "aug_fn", None) is aa.posterize:
            op.aug_fn, n = _posterize, n + 1
    return n


@TRANSFORMS.register_module()
class TimmClsTransform(BaseTransform):
    """timm's ImageNet transforms (``timm.data.create_transform`` with ``use_prefetcher=True``) on a decoded image.

    Takes ``img`` (HWC uint8 in BGR, as ``LoadImageFromFile`` gives it; ``channel_order='rgb'`` for RGB) and
    leaves ``img`` as a uint8 [3, H, W] RGB tensor. Training: RandomResizedCrop (``scale``, ``ratio``,
    ``interpolation``), flips, RandAugment/AutoAugment (``auto_augment``), colour jitter; evaluation: resize to
    ``input_size / crop_pct`` and centre crop. Normalisation and random erasing are left to the data preprocessor.
    RandAugment's posterize keeps the old Pillow meaning of 0 bits (see :func:`_posterize`).

    Args:
        input_size: output side (or (H, W)).
        is_training: the random training transforms, else the evaluation ones.
        timm_kwargs: any other argument of ``timm.data.create_transform`` (``scale``, ``ratio``, ``hflip``,
            ``color_jitter``, ``auto_augment``, ``interpolation``, ``crop_pct``, ``crop_mode``, ``mean``, ...).
    """

    def __init__(self, input_size: Union[int, Sequence[int]] = 224, is_training: bool = False,
                 channel_order: str = "bgr", **timm_kwargs) -> None:
        from timm.data import create_transform

        if channel_order not in ("bgr", "rgb"):
            raise UserError(f"channel_order must be 'bgr' or 'rgb', got {channel_order!r}")
        for bad in ("use_prefetcher", "re_prob", "separate", "normalize"):
            if bad in timm_kwargs:
                raise UserError(f"TimmClsTransform: {bad} is not a transform option here (random erasing and "
                                "normalisation run in dense_adapters.ClsDataPreprocessor)")
        size = tuple(input_size) if isinstance(input_size, (list, tuple)) else int(input_size)
        try:
            self.tf = create_transform(size, is_training=is_training, use_prefetcher=True, **timm_kwargs)
        except (TypeError, AssertionError, ValueError, KeyError) as e:
            why = str(e) or type(e).__name__
            raise UserError(f"TimmClsTransform({timm_kwargs}): timm refused the options: {why}") from e
        _fix_posterize(self.tf)
        self.input_size, self.is_training, self.channel_order = size, is_training, channel_order
        self.timm_kwargs = timm_kwargs

    def transform(self, results: dict) -> dict:
        from PIL import Image

        img = results["img"]
        if isinstance(img, np.ndarray):
            if img.ndim == 2:
                img = np.repeat(img[..., None], 3, axis=2)
            if img.ndim != 3 or img.shape[2] not in (3, 4) or img.dtype != np.uint8:
                raise DataError(f"{results.get('img_path')}: expected an 8-bit colour image, got {img.dtype} "
                                f"{img.shape}: load it with LoadImageFromFile(color_type='color...')")
            img = img[..., :3]
            if self.channel_order == "bgr":
                img = img[..., ::-1]
            img = Image.fromarray(np.ascontiguousarray(img))
        out = self.tf(img)  # uint8 tensor [3, H, W]
        results["img"] = out
        results["img_shape"] = tuple(out.shape[-2:])
        return results

    def __repr__(self) -> str:
        return (f"TimmClsTransform(input_size={self.input_size}, is_training={self.is_training}, "
                f"{', '.join(f'{k}={v!r}' for k, v in self.timm_kwargs.items())})")


@TRANSFORMS.register_module()
class PackClsInputs(BaseTransform):
    """``img`` ([3, H, W] tensor or HWC array) and ``gt_label`` -> ``dict(inputs=uint8 [3, H, W],
    data_samples=BaseDataElement(gt_label=int64 [1], metainfo=...))``."""

    META_KEYS = ("img_path", "ori_shape", "img_shape", "sample_idx")

    def transform(self, results: dict) -> dict:
        img = results["img"]
        if isinstance(img, np.ndarray):
            img = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1) if img.ndim == 3 else img[None]))
        meta = {k: results[k] for k in self.META_KEYS if k in results}
        meta.setdefault("img_shape", tuple(img.shape[-2:]))
        sample = BaseDataElement(metainfo=meta)
        if "gt_label" in results:
            sample.gt_label = torch.tensor([int(results["gt_label"])], dtype=torch.int64)
        return dict(inputs=img, data_samples=sample)
