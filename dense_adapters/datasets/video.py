"""Video denoising data: sequences of frames (DAVIS 2017 or any folder of frame folders) as clips of T frames for
training and as whole sequences for evaluation.

Layouts (``layout='auto'`` picks the first that matches):

- ``'davis'``: ``<root>/JPEGImages/<resolution>/<sequence>/00000.jpg ...`` (DAVIS 2017; ``resolution='480p'``),
  sequences optionally listed by ``<root>/ImageSets/2017/<split>.txt`` (``split='train'|'val'|...``).
- ``'folders'``: ``<root>/<sequence>/<frame>.{png,jpg,...}``, frames in file-name order.
- ``'frames'``: ``<root>/<frame>.png ...``: the folder itself is one sequence.

Each sample is ``gt`` = uint8 frames [T, H, W, 3] (read by :class:`LoadVideoFrames`); the shared denoising
transforms then act on every frame alike (:class:`~dense_adapters.datasets.denoise.PairedRandomCrop`,
``PairedRandomFlip``, ``AddSyntheticNoise``, ``PackRestorationInputs`` -> inputs [T, 3, H, W]).
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.dataset import BaseDataset

from ..errors import DataError, UserError
from ..registry import DATASETS, TRANSFORMS
from .denoise import list_images, read_rgb

LAYOUTS = ("auto", "davis", "folders", "frames")


def _sub_dirs(folder: str) -> list[str]:
    return sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))


def find_sequences(root: str, layout: str = "auto", resolution: str = "480p",
                   split: Optional[str] = None) -> tuple[str, dict[str, list[str]]]:
    """(layout found, {sequence name: sorted frame paths}) under ``root`` (see the module doc)."""
    if layout not in LAYOUTS:
        raise UserError(f"unknown video layout {layout!r}: use one of {', '.join(LAYOUTS)}")
    if not os.path.isdir(root):
        raise DataError(f"video data folder {root!r} does not exist: pass --data-root DIR (a DAVIS root with "
                        "JPEGImages/480p/, or a folder of frame folders)")
    jpeg = os.path.join(root, "JPEGImages")
    davis = os.path.join(jpeg, resolution)
    if layout == "davis" or (layout == "auto" and os.path.isdir(jpeg)):
        if not os.path.isdir(davis):
            have = _sub_dirs(jpeg) if os.path.isdir(jpeg) else []
            raise DataError(f"DAVIS layout: {davis!r} does not exist (JPEGImages/ has {have}): set resolution= "
                            "to one of those, or pass the DAVIS root")
        layout, base = "davis", davis
    elif layout == "frames" or (layout == "auto" and list_images(root) and not _sub_dirs(root)):
        return "frames", {os.path.basename(os.path.normpath(root)) or "video": list_images(root)}
    else:
        layout, base = "folders", root
    names = _sub_dirs(base)
    if split:
        listed = _split_names(root, split)
        missing = sorted(set(listed) - set(names))
        if missing:
            raise DataError(f"split {split!r} lists sequences missing under {base!r}: {missing[:5]}")
        names = listed
    seqs = {n: list_images(os.path.join(base, n)) for n in names}
    seqs = {n: f for n, f in seqs.items() if f}
    if not seqs:
        raise DataError(f"no frame folders with images under {base!r}: expected <sequence>/<frame>.jpg|png")
    return layout, seqs


def _split_names(root: str, split: str) -> list[str]:
    path = split if split.endswith(".txt") else os.path.join(root, "ImageSets", "2017", f"{split}.txt")
    if not os.path.isabs(path) and not os.path.isfile(path):
        path = os.path.join(root, path)
    if not os.path.isfile(path):
        raise DataError(f"sequence list {path!r} does not exist: DAVIS keeps ImageSets/2017/{{train,val}}.txt; "
                        "or pass split=None for every sequence")
    with open(path) as f:
        return [ln.strip() for ln in f if ln.strip()]


@DATASETS.register_module()
class VideoFramesDataset(BaseDataset):
    """Video sequences for denoising (``type='dense_adapters.VideoFramesDataset'``).

    Args:
        data_root: a DAVIS 2017 root, a folder of frame folders or one folder of frames (see module doc).
        layout: ``'auto'``, ``'davis'``, ``'folders'`` or ``'frames'``.
        resolution: DAVIS ``JPEGImages/<resolution>`` (``'480p'`` or ``'Full-Resolution'``).
        split: DAVIS ``ImageSets/2017/<split>.txt`` (or any .txt listing sequence names); None: all sequences.
        num_frames: frames per training clip (T). ``clip_stride``: step between clip starts.
        whole_sequences: one sample per sequence (evaluation) instead of clips; ``max_frames`` keeps the first
            frames only (FastDVDnet scores at most 85 per sequence).
        seed: fixed noise, ``noise_seed = seed + index`` per sample (validation); None: fresh noise each time.
    """

    def __init__(self, data_root: str, layout: str = "auto", resolution: str = "480p", split: Optional[str] = None,
                 num_frames: int = 7, clip_stride: int = 1, whole_sequences: bool = False,
                 max_frames: Optional[int] = None, seed: Optional[int] = None, **kwargs) -> None:
        if num_frames < 1 or clip_stride < 1:
            raise UserError(f"num_frames ({num_frames}) and clip_stride ({clip_stride}) must be >= 1")
        self.layout, self.resolution, self.split = layout, resolution, split
        self.num_frames, self.clip_stride, self.whole_sequences = num_frames, clip_stride, whole_sequences
        self.max_frames, self.seed = max_frames, seed
        super().__init__(data_root=data_root, **kwargs)

    def load_data_list(self) -> list[dict]:
        _, seqs = find_sequences(self.data_root, self.layout, self.resolution, self.split)
        out = []
        for name, frames in seqs.items():
            frames = frames[: self.max_frames] if self.max_frames else frames
            if self.whole_sequences:
                out.append(dict(sequence=name, frame_paths=frames, frame_start=0))
                continue
            if len(frames) < self.num_frames:
                continue  # too short for a training clip
            for s in range(0, len(frames) - self.num_frames + 1, self.clip_stride):
                out.append(dict(sequence=name, frame_paths=frames[s: s + self.num_frames], frame_start=s))
        if not out:
            raise DataError(f"no sequence under {self.data_root!r} has {self.num_frames} frames: lower num_frames")
        for i, d in enumerate(out):
            d["noise_seed"] = None if self.seed is None else self.seed + i
            d["img_path"] = d["frame_paths"][0]
        return out


@TRANSFORMS.register_module()
class LoadVideoFrames(BaseTransform):
    """Read ``frame_paths`` into ``gt`` = uint8 [T, H, W, 3] RGB; every frame must have the first one's size."""

    def transform(self, results: dict) -> dict:
        frames = []
        for p in results["frame_paths"]:
            try:
                im = read_rgb(p)
            except Exception as e:  # PIL raises several types for unreadable files
                raise DataError(f"cannot read frame {p} ({type(e).__name__}: {e}): replace or remove it") from None
            if frames and im.shape != frames[0].shape:
                raise DataError(f"frame {p} is {im.shape[1]}x{im.shape[0]} but {results['frame_paths'][0]} is "
                                f"{frames[0].shape[1]}x{frames[0].shape[0]}: the frames of a sequence must have "
                                "one size")
            frames.append(im)
        results["gt"] = np.stack(frames)
        results["ori_shape"] = frames[0].shape[:2]
        return results


__all__ = ["VideoFramesDataset", "LoadVideoFrames", "find_sequences"]
