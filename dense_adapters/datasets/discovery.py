"""Image + box readers for unsupervised object discovery (LOST): Pascal VOC, COCO20k and plain folders.

Plain Python/torch (nothing from mmseg). The ground-truth protocol follows LOST's own code (valeoai/LOST,
``datasets.py`` and ``main_lost.py``):

* VOC: every object is kept by default, ``difficult`` and ``truncated`` included (the setting of LOST's reported
  VOC07/VOC12 numbers). ``remove_hards=True`` is LOST's ``--no_hard``: hard objects (truncated or difficult) are
  dropped and images left with no box are skipped. Boxes become 0-based continuous corners: ``xmin - 1, ymin - 1,
  xmax, ymax`` (VOC stores 1-based inclusive pixel indices).
* COCO20k: the train2014 images named in ``coco_20k_filenames.txt``; ``iscrowd`` boxes are dropped and
  ``[x, y, w, h]`` becomes ``[x, y, x + w, y + h]`` rounded to integers, as LOST does.
* Images are used at full resolution, ImageNet-normalised, then zero-padded at the bottom and right to a
  multiple of the patch size (LOST pads, it does not crop or resize): the patch grid then starts at pixel (0, 0) and
  predicted boxes are clipped back to the original image size.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Optional, Sequence
from xml.etree import ElementTree as ET

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError, UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass
class DiscoveryItem:
    """One image: ``name`` (unique id), ``path``, ground-truth ``boxes`` [n, 4] xyxy in pixels (``None``: no
    annotations at all, as for a folder) and class ``labels``."""

    name: str
    path: str
    boxes: Optional[np.ndarray] = None
    labels: list = field(default_factory=list)


def _require_dir(path: str, what: str, hint: str) -> None:
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{what} {path!r} does not exist: {hint}")


def _require_file(path: str, what: str, hint: str) -> None:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} {path!r} not found: {hint}")


class DiscoveryDataset:
    """A list of :class:`DiscoveryItem`; ``load(i)`` reads the image as uint8 RGB [H, W, 3]."""

    name = "images"

    def __init__(self, items: Sequence[DiscoveryItem]) -> None:
        self.items = list(items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> DiscoveryItem:
        return self.items[i]

    def load(self, i: int) -> np.ndarray:
        from ..imageio import read_rgb

        return read_rgb(self.items[i].path)  # writable copy [H, W, 3] uint8 (16-bit scaled, bad files in one line)

    @property
    def has_annotations(self) -> bool:
        return any(it.boxes is not None for it in self.items)


class VOCBoxes(DiscoveryDataset):
    """Pascal VOC detection boxes. ``root`` is the folder holding ``JPEGImages``, ``Annotations`` and
    ``ImageSets/Main`` (e.g. ``VOCdevkit/VOC2007``); ``split`` names ``ImageSets/Main/<split>.txt``."""

    def __init__(self, root: str, split: str = "trainval", remove_hards: bool = False) -> None:
        _require_dir(root, "VOC data root", "pass the folder that holds JPEGImages/, Annotations/ and ImageSets/ "
                     "(e.g. VOCdevkit/VOC2007)")
        split_file = os.path.join(root, "ImageSets", "Main", f"{split}.txt")
        _require_file(split_file, "VOC split file",
                      f"pick a --set that exists under {os.path.join(root, 'ImageSets', 'Main')}")
        with open(split_file) as f:
            ids = [line.split()[0] for line in f if line.strip()]
        self.name = f"VOC_{split}" + ("-nohards" if remove_hards else "")
        self.num_skipped = 0
        items = []
        for img_id in ids:
            boxes, labels = parse_voc_xml(os.path.join(root, "Annotations", f"{img_id}.xml"), remove_hards)
            if remove_hards and len(boxes) == 0:
                self.num_skipped += 1  # LOST's --no_hard: images with only hard objects are not evaluated
                continue
            items.append(DiscoveryItem(img_id, os.path.join(root, "JPEGImages", f"{img_id}.jpg"), boxes, labels))
        super().__init__(items)


def parse_voc_xml(path: str, remove_hards: bool = False) -> tuple[np.ndarray, list[str]]:
    """Boxes [n, 4] (0-based continuous xyxy, float) and class names of one VOC annotation file."""
    _require_file(path, "VOC annotation", "every id of the split file needs Annotations/<id>.xml")
    root = ET.parse(path).getroot()
    boxes, labels = [], []
    for obj in root.iter("object"):
        hard = obj.findtext("truncated", "0").strip() == "1" or obj.findtext("difficult", "0").strip() == "1"
        if remove_hards and hard:
            continue
        bb = obj.find("bndbox")
        x0, y0, x1, y1 = (int(float(bb.findtext(t))) for t in ("xmin", "ymin", "xmax", "ymax"))
        boxes.append([x0 - 1, y0 - 1, x1, y1])
        labels.append(obj.findtext("name", "").strip())
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4), labels


class COCO20kBoxes(DiscoveryDataset):
    """COCO20k: the COCO train2014 images listed in ``file_list`` with their non-crowd instance boxes.

    ``root`` holds the images (``<root>/train2014/``, ``<root>/images/train2014/`` or the images directly);
    ``ann_file`` defaults to ``<root>/annotations/instances_train2014.json`` (LOST's pre-filtered
    ``instances_train2014_sel20k.json`` works too) and ``file_list`` to ``<root>/coco_20k_filenames.txt``.
    Images of the list without any non-crowd box are skipped (counted in ``num_skipped``).
    """

    def __init__(self, root: str, split: str = "train", ann_file: Optional[str] = None,
                 file_list: Optional[str] = None) -> None:
        _require_dir(root, "COCO data root", "pass the folder that holds train2014/ (or images/train2014/)")
        ann_file = ann_file or os.path.join(root, "annotations", f"instances_{split}2014.json")
        file_list = file_list or os.path.join(root, "coco_20k_filenames.txt")
        _require_file(file_list, "COCO20k file list", "get coco_20k_filenames.txt from the LOST repository "
                      "(datasets/) or pass --split-file")
        _require_file(ann_file, "COCO annotation file", f"pass --ann-file (instances_{split}2014.json)")
        img_dir = next((d for d in (os.path.join(root, f"{split}2014"), os.path.join(root, "images", f"{split}2014"))
                        if os.path.isdir(d)), root)
        with open(file_list) as f:
            wanted = [int(os.path.splitext(line.strip())[0].split("_")[-1]) for line in f if line.strip()]
        with open(ann_file) as f:
            coco = json.load(f)
        files = {im["id"]: im["file_name"] for im in coco["images"]}
        anns: dict[int, list] = {}
        for a in coco["annotations"]:
            anns.setdefault(a["image_id"], []).append(a)
        self.name = f"COCO20k_{split}"
        self.num_skipped = 0
        items = []
        for img_id in wanted:
            if img_id not in files:
                raise DataError(f"image id {img_id} of {file_list} is not in {ann_file}: "
                                f"use the {split}2014 annotations")
            objs = [a for a in anns.get(img_id, []) if not a.get("iscrowd", 0)]
            if not objs:
                self.num_skipped += 1
                continue
            boxes = [[int(round(v)) for v in (x, y, x + w, y + h)] for x, y, w, h in (a["bbox"] for a in objs)]
            items.append(DiscoveryItem(str(img_id), os.path.join(img_dir, files[img_id]),
                                       np.asarray(boxes, dtype=np.float64), [a["category_id"] for a in objs]))
        super().__init__(items)


class FolderImages(DiscoveryDataset):
    """Every image file directly in ``root`` (sorted), without annotations: LOST predicts boxes only."""

    def __init__(self, root: str) -> None:
        _require_dir(root, "image folder", "pass a folder of .jpg/.png images")
        names = sorted(n for n in os.listdir(root) if n.lower().endswith(IMAGE_EXTS))
        if not names:
            raise FileNotFoundError(f"image folder {root!r} holds no images ({', '.join(IMAGE_EXTS)}): pick another")
        self.name = os.path.basename(os.path.normpath(root))
        self.num_skipped = 0
        super().__init__([DiscoveryItem(os.path.splitext(n)[0], os.path.join(root, n)) for n in names])


def build_discovery_dataset(kind: str, root: str, split: str = "trainval", remove_hards: bool = False,
                            ann_file: Optional[str] = None, file_list: Optional[str] = None) -> DiscoveryDataset:
    """``kind`` one of VOC07, VOC12, COCO20k, folder."""
    if kind in ("VOC07", "VOC12"):
        return VOCBoxes(root, split, remove_hards)
    if kind == "COCO20k":
        return COCO20kBoxes(root, "train" if split in ("trainval", "train") else split, ann_file, file_list)
    if kind == "folder":
        return FolderImages(root)
    raise UserError(f"unknown dataset {kind!r}: use VOC07, VOC12, COCO20k or folder")


# ------------------------------------------------------------------------------------------------ images
def normalize_image(img: np.ndarray) -> Tensor:
    """uint8 RGB [H, W, 3] -> ImageNet-normalised float [3, H, W]."""
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (x - mean) / std


def padded_size(hw: tuple[int, int], patch_size: int) -> tuple[int, int]:
    """Smallest multiple of ``patch_size`` >= each side."""
    return (-(-hw[0] // patch_size) * patch_size, -(-hw[1] // patch_size) * patch_size)


def pad_to(x: Tensor, hw: tuple[int, int]) -> Tensor:
    """Zero-pad [3, H, W] at the bottom and right to ``hw`` (after normalisation, as LOST)."""
    H, W = x.shape[-2:]
    if H > hw[0] or W > hw[1]:
        raise ValueError(f"image {H}x{W} is larger than the padded size {hw[0]}x{hw[1]}")
    return torch.nn.functional.pad(x, (0, hw[1] - W, 0, hw[0] - H))


def size_batches(sizes: Sequence[tuple[int, int]], batch_size: int) -> list[list[int]]:
    """Group indices of equal (padded) size into batches of at most ``batch_size``, in first-seen order."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, s in enumerate(sizes):
        groups.setdefault(tuple(s), []).append(i)
    return [g[j : j + batch_size] for g in groups.values() for j in range(0, len(g), batch_size)]
