"""The one place where image and label files are read and validated (plain Python: PIL, NumPy).

What a file *holds* is checked before anything casts it:

* :func:`open_rgb` / :func:`read_rgb`: any photo as 8-bit RGB. 16-bit grey or colour images are scaled to 8 bits
  (PIL's ``convert('RGB')`` clips them, which turns a 16-bit photo white), 32-bit integer and float images by their
  range; a missing, empty or corrupt file is one :class:`~dense_adapters.errors.DataError` line naming it.
* :func:`label_file_problem`: a segmentation label map must be one channel of class indices that fit the 8 bits
  mmseg reads them into: 16-bit maps with values above 255 (mmseg would wrap 300 into class 44) and colour-coded
  RGB maps are refused.
* :func:`depth_file_problem`: a depth PNG must hold 16 bits (millimetres); an 8-bit one holds at most 255 mm.

``dense_adapters.datasets.checks.CheckedLoading`` (training and test pipelines), ``tools/check_dataset.py``, the
LOST, denoising, analysis and retrofit readers all use these functions.
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np

from .errors import DataError

SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")
LABEL_MODES = ("L", "P", "1")


def _why(e: BaseException, path: str) -> str:
    text = " ".join(str(e).replace(repr(path), "it").replace(path, "it").split())
    return text or type(e).__name__


def _open(path: str):
    im = _open_lazy(path)
    try:
        im.load()
    except (OSError, SyntaxError, ValueError) as e:
        raise DataError(f"cannot read image {path} ({_why(e, path)}): replace or remove the file") from None
    return im


def _to_uint8(a: np.ndarray, path: str, bits16: bool) -> np.ndarray:
    """An integer or float array as uint8, by its container (16 bits) or its range."""
    if bits16:
        return np.round(a.astype(np.float64) / 257.0).astype(np.uint8)
    if a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise DataError(f"{path} holds NaN or infinite pixel values: replace the file")
        hi = float(a.max()) if a.size else 0.0
        scale = 255.0 if hi <= 1.0 else 1.0 if hi <= 255.0 else None
    else:
        hi = int(a.max()) if a.size else 0
        scale = 1.0 if hi <= 255 else 1 / 257.0 if hi <= 65535 else None
    if scale is None or (a.size and float(a.min()) < 0):
        raise DataError(f"{path} holds pixel values in {a.min()}..{a.max()}, outside what an 8-bit or 16-bit photo "
                        "holds: save it as an 8-bit or 16-bit image")
    return np.round(np.clip(a.astype(np.float64) * scale, 0, 255)).astype(np.uint8)


def open_rgb(path: str, draft: Optional[int] = None):
    """``path`` as an 8-bit RGB PIL image (see the module doc); ``draft`` decodes large JPEGs at a reduced scale."""
    from PIL import Image

    if draft:
        im = _open_lazy(path)
        if im.format == "JPEG":
            im.draft("RGB", (draft, draft))
        try:
            im.load()
        except (OSError, SyntaxError, ValueError) as e:
            raise DataError(f"cannot read image {path} ({_why(e, path)}): replace or remove the file") from None
    else:
        im = _open(path)
    if im.mode in SIXTEEN_BIT or im.mode in ("I", "F"):
        arr = _to_uint8(np.asarray(im), path, bits16=im.mode in SIXTEEN_BIT)
        im = Image.fromarray(arr, mode="L")
    if im.mode != "RGB":
        im = im.convert("RGB")
    if min(im.size) < 1:
        raise DataError(f"{path} decodes to an empty image ({im.size[0]}x{im.size[1]}): replace the file")
    return im


def _open_lazy(path: str):
    from PIL import Image, UnidentifiedImageError

    if not os.path.exists(path):
        raise DataError(f"image not found: {path}: check the path")
    if not os.path.isfile(path):
        raise DataError(f"{path} is a folder, not an image file")
    if os.path.getsize(path) == 0:
        raise DataError(f"{path} is empty (0 bytes): replace or remove the file")
    try:
        return Image.open(path)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"cannot read image {path} ({_why(e, path)}): replace or remove the file") from None


def read_rgb(path: str) -> np.ndarray:
    """uint8 [H, W, 3] RGB of any image file (grey repeated, alpha dropped, 16-bit scaled); a writable copy."""
    return np.array(open_rgb(path))


def image_size(path: str) -> tuple[int, int]:
    """(H, W) from the file header; one line for a missing or unreadable file."""
    im = _open_lazy(path)
    return im.size[1], im.size[0]


def label_file_problem(path: str) -> Optional[str]:
    """Why the label map ``path`` cannot be read as 8-bit class indices, or None (reads the header; the pixels
    only of 16-/32-bit files)."""
    try:
        im = _open_lazy(path)
    except DataError as e:
        return str(e)
    mode = im.mode
    if mode in LABEL_MODES:
        return None
    if mode in SIXTEEN_BIT or mode == "I":
        try:
            a = np.asarray(im)
        except (OSError, ValueError) as e:
            return f"cannot decode ({' '.join(str(e).split())})"
        hi, lo = (int(a.max()), int(a.min())) if a.size else (0, 0)
        if hi > 255 or lo < 0:
            bad = int(((a > 255) | (a < 0)).sum())
            bits = "32-bit" if mode == "I" else "16-bit"
            return (f"a {bits} label map with values up to {hi} ({bad} pixels above 255): labels are read as 8 bits, "
                    f"so {hi} would become class {hi % 256}; save the map as 8-bit class indices (or remap ids)")
        return None
    if mode in ("F",):
        return "a floating-point image, not a label map of class indices: save 8-bit class indices (mode L or P)"
    bands = len(im.getbands())
    return (f"a {bands}-channel {mode} image, not a single-channel label map: labels must be class indices (PNG "
            "mode L or P); convert colour-coded labels to class ids first")


def depth_file_problem(path: str) -> Optional[str]:
    """Why the depth PNG ``path`` is not a single-channel 16-bit map, or None (header only)."""
    if not path.lower().endswith(".png"):
        return None
    try:
        im = _open_lazy(path)
    except DataError as e:
        return str(e)
    if im.mode in SIXTEEN_BIT or im.mode == "I":
        return None
    if im.mode in LABEL_MODES:
        return (f"an 8-bit PNG ({im.mode}): depth PNGs hold 16-bit millimetres (8 bits hold at most 255 mm); "
                "save the depth as uint16")
    return f"a {len(im.getbands())}-channel {im.mode} PNG: depth PNGs must be single-channel 16-bit millimetres"
