"""Data checks with one-line errors: empty splits at build time, unreadable images, image/label size mismatches
and label values outside the class range at load time.

The training and test tools wrap the leading loading transforms of every pipeline in :class:`CheckedLoading`
(a max and a shape comparison per sample: negligible next to decoding) and call :func:`check_not_empty` on the
datasets; tools/check_dataset.py runs the same checks over a whole split before a long training.
"""
from __future__ import annotations

import copy
import os.path as osp
from typing import Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from ..errors import DataError  # noqa: F401  (one argument: DataLoader workers re-raise with type(e)(msg))
from ..registry import TRANSFORMS

LOAD_TYPES = ("LoadImageFromFile", "LoadAnnotations", "LoadDepthAnnotation")


def dataset_cfgs(cfg) -> list[tuple[str, dict]]:
    """(name, dataset cfg) of every dataloader in ``cfg``, unwrapping RepeatDataset/ConcatDataset."""
    out = []
    for name in ("train_dataloader", "val_dataloader", "test_dataloader"):
        loader = cfg.get(name)
        if not loader or "dataset" not in loader:
            continue
        stack = [loader["dataset"]]
        while stack:
            ds = stack.pop()
            if "dataset" in ds:
                stack.append(ds["dataset"])
            elif "datasets" in ds:
                stack.extend(ds["datasets"])
            else:
                out.append((name, ds))
    return out


def label_problem(gt: np.ndarray, num_classes: int, ignore_index: int = 255) -> Optional[str]:
    """Text naming the label values of ``gt`` outside ``0..num_classes-1`` other than ``ignore_index``, or None."""
    if gt.size == 0 or (gt.min() >= 0 and gt.max() < num_classes):
        return None  # the fast path: one min and one max per sample
    bad = np.unique(gt[((gt < 0) | (gt >= num_classes)) & (gt != ignore_index)])
    if bad.size == 0:
        return None
    shown = ", ".join(str(int(v)) for v in bad[:6]) + (", ..." if bad.size > 6 else "")
    return f"label values {shown} outside 0..{num_classes - 1} (ignore_index {ignore_index})"


@TRANSFORMS.register_module()
class CheckedLoading(BaseTransform):
    """Runs loading transforms and checks what they produced; raises :class:`DataError` naming the file.

    Args:
        transforms: the loading transforms (e.g. ``LoadImageFromFile``, ``LoadAnnotations``), run in order.
        num_classes: labels must be in ``0..num_classes-1`` or ``ignore_index`` (after ``reduce_zero_label``);
            None skips the range check.
        ignore_index: the label value the loss ignores.
        check_size: labels must have the image's size (False where the image was resized before the labels load,
            as in mmseg's test pipelines).
    """

    def __init__(self, transforms: Sequence[dict], num_classes: Optional[int] = None, ignore_index: int = 255,
                 check_size: bool = True):
        self.transforms = [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in transforms]
        self.num_classes, self.ignore_index, self.check_size = num_classes, ignore_index, check_size

    def transform(self, results: dict) -> dict:
        for t in self.transforms:
            name = type(t).__name__
            path = results.get("seg_map_path") if "Annotation" in name else results.get("img_path")
            if "Annotation" in name:  # what the file holds, before mmseg casts it (to uint8 / float)
                path = results.get("depth_map_path", path) if "Depth" in name else path
                problem = file_problem(path, depth="Depth" in name)
                if problem:
                    raise DataError(f"{path}: {problem}")
            try:
                out = t(results)
            except Exception as e:  # decoding errors, failed asserts, missing files
                why = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
                raise DataError(f"cannot read {path} ({name}: {why}): replace or remove the file "
                                "(tools/check_dataset.py lists every bad file)") from None
            if out is None:
                raise DataError(f"cannot read {path} ({name} returned nothing): replace or remove the file")
            results = out
        img, gt = results.get("img"), results.get("gt_seg_map")
        if img is not None and (img.ndim < 2 or img.size == 0):
            raise DataError(f"{results.get('img_path')} decodes to an empty image {img.shape}: replace the file")
        if gt is not None:
            if self.check_size and img is not None and tuple(gt.shape[:2]) != tuple(img.shape[:2]):
                raise DataError(
                    f"{results.get('seg_map_path')} is {gt.shape[1]}x{gt.shape[0]} but its image "
                    f"{results.get('img_path')} is {img.shape[1]}x{img.shape[0]} (WxH): labels must have the "
                    "image's size; fix or remove the pair")
            if self.num_classes is not None:
                problem = label_problem(gt, self.num_classes, self.ignore_index)
                if problem:
                    raise DataError(
                        f"{results.get('seg_map_path')}: {problem}: fix the annotation, or set num_classes / "
                        "reduce_zero_label to match the dataset")
        return results

    def __repr__(self) -> str:
        return f"CheckedLoading({self.transforms}, num_classes={self.num_classes})"


def file_problem(path, depth: bool = False) -> Optional[str]:
    """What is wrong with a local label (or depth) file before it is decoded (:mod:`dense_adapters.imageio`);
    None for a good file or one that is not local (a remote backend reads it)."""
    from ..imageio import depth_file_problem, label_file_problem

    if not isinstance(path, str) or not osp.isfile(path):
        return None
    return depth_file_problem(path) if depth else label_file_problem(path)


def model_label_space(cfg) -> tuple[Optional[int], int]:
    """(num_classes, ignore_index) of the config's decode head, or (None, 255) for models without one."""
    head = cfg.get("model", {}).get("decode_head")
    if isinstance(head, (list, tuple)):
        head = head[-1] if head else None
    if not isinstance(head, dict) or "num_classes" not in head:
        return None, 255
    return int(head["num_classes"]), int(head.get("ignore_index", 255))


def _short_type(t) -> str:
    return str(t).rsplit(".", 1)[-1] if isinstance(t, str) else getattr(t, "__name__", "")


def wrap_pipeline(pipeline: list, num_classes: Optional[int], ignore_index: int) -> list:
    """``pipeline`` with its leading loading transforms wrapped in :class:`CheckedLoading`, and a label loading
    that comes later (after a Resize, as in mmseg's test pipelines) wrapped for the label range (idempotent)."""
    if not pipeline or not all(isinstance(t, dict) for t in pipeline):
        return pipeline
    if any(_short_type(t.get("type")) == "CheckedLoading" for t in pipeline):
        return pipeline
    n = 0
    while n < len(pipeline) and _short_type(pipeline[n].get("type")) in LOAD_TYPES:
        n += 1
    out = [dict(type="dense_adapters.CheckedLoading", transforms=copy.deepcopy(pipeline[:n]),
                num_classes=num_classes, ignore_index=ignore_index)] if n else []
    for t in pipeline[n:]:
        if _short_type(t.get("type")) in LOAD_TYPES:
            t = dict(type="dense_adapters.CheckedLoading", transforms=[copy.deepcopy(t)], num_classes=num_classes,
                     ignore_index=ignore_index, check_size=False)
        out.append(t)
    return out


def loading_only(pipeline: list, num_classes: Optional[int], ignore_index: int) -> Optional[dict]:
    """One CheckedLoading of every loading transform of ``pipeline`` (for tools/check_dataset.py), or None."""
    loads = [copy.deepcopy(t) for t in pipeline if isinstance(t, dict) and _short_type(t.get("type")) in LOAD_TYPES]
    return dict(type="dense_adapters.CheckedLoading", transforms=loads, num_classes=num_classes,
                ignore_index=ignore_index) if loads else None


def add_load_checks(cfg, loaders: Sequence[str]) -> None:
    """Wrap the loading transforms of the datasets of ``loaders`` (in place) in :class:`CheckedLoading`."""
    num_classes, ignore = model_label_space(cfg)
    for name, ds in dataset_cfgs(cfg):
        if name in loaders and isinstance(ds.get("pipeline"), list):
            ds["pipeline"] = wrap_pipeline(ds["pipeline"], num_classes, ignore)


def describe_source(ds) -> str:
    """Where a dataset looks for samples, for messages."""
    prefix = getattr(ds, "data_prefix", {}) or {}
    img = prefix.get("img_path") or prefix.get("img") or getattr(ds, "data_root", "") or "?"
    ann = getattr(ds, "ann_file", "")
    suffix = getattr(ds, "img_suffix", None)
    return f"{img}" + (f" (*{suffix})" if suffix else "") + (f", split file {ann}" if ann else "")


def check_not_empty(ds, loader: str) -> None:
    """Raise :class:`DataError` when a built dataset has no samples (an InfiniteSampler would wait forever)."""
    if len(ds) == 0:
        raise DataError(f"{loader} has no samples: nothing found in {describe_source(ds)}: check the folder, "
                        "the split file and img_suffix/seg_map_suffix, or pass --data-root DIR")


def build_dataset(cfg, loader: str):
    """Build the dataset of ``cfg[loader]`` (mmseg scope), for checks outside the runner."""
    from mmengine.registry import DefaultScope
    from mmseg.registry import DATASETS

    ds_cfg = copy.deepcopy(cfg[loader]["dataset"])
    while _short_type(ds_cfg.get("type")) == "SeededDataset":  # the same samples (checked before seeding matters)
        ds_cfg = ds_cfg["dataset"]
    if "dataset" not in ds_cfg and "datasets" not in ds_cfg:
        ds_cfg["serialize_data"] = False  # mmengine's serialisation crashes on an empty list before we can tell
    scope = cfg.get("default_scope", "mmseg")
    with DefaultScope.overwrite_default_scope(scope):
        return DATASETS.build(ds_cfg)


def check_datasets(cfg, loaders: Sequence[str]) -> dict[str, int]:
    """Build each dataset of ``loaders`` once and refuse empty ones; returns their lengths."""
    sizes = {}
    for loader in loaders:
        if cfg.get(loader) and "dataset" in cfg[loader]:
            ds = build_dataset(cfg, loader)
            check_not_empty(ds, loader)
            sizes[loader] = len(ds)
    return sizes


def image_file_problem(path: str) -> Optional[str]:
    """A full decode with PIL (catches truncated files that OpenCV decodes with a warning); None when fine."""
    from PIL import Image

    if not osp.isfile(path):
        return "missing"
    try:
        with Image.open(path) as im:
            im.load()
    except Exception as e:  # PIL raises many types for broken files
        return f"corrupt ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
    return None
