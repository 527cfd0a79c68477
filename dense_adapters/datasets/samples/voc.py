"""A Pascal-VOC-format sample for object discovery: six real photos from scikit-image with hand-drawn boxes.

How the boxes were obtained: each photo was rendered at its original ``skimage.data`` resolution with a 25-pixel
grid, looked at, and the tight box of every clearly visible object was read off the grid (by a person, to about
+-5 px); the boxes were then drawn back onto the photos and checked. They are approximate human boxes, not
dataset annotations. ``truncated`` marks objects cut by the image border, ``difficult`` one small, partly hidden
object (the spoon), so that LOST's ``no_hard`` protocol has something to remove.

Layout as ``VOCdevkit/VOC2007``: ``JPEGImages/*.jpg``, ``Annotations/*.xml`` (1-based inclusive pixel corners as
in VOC), ``ImageSets/Main/{train,val,trainval}.txt``. Images are downscaled so the long side is <= ``max_side``
and the boxes scaled with them.
"""
from __future__ import annotations

import os
from xml.etree import ElementTree as ET

import numpy as np

from . import photos, register_sample

# name -> [(class, (x0, y0, x1, y1) in 0-based continuous pixels of the ORIGINAL skimage photo, truncated,
# difficult)]
OBJECTS: dict[str, list[tuple[str, tuple[float, float, float, float], int, int]]] = {
    "astronaut": [  # 512 x 512
        ("person", (20, 15, 400, 512), 1, 0),
        ("helmet", (280, 350, 512, 512), 1, 0),
        ("spaceshuttle", (355, 0, 468, 285), 1, 0),
    ],
    "chelsea": [("cat", (30, 0, 400, 300), 1, 0)],  # 451 x 300
    "coffee": [  # 600 x 400
        ("cup", (175, 18, 410, 295), 0, 0),
        ("saucer", (78, 72, 482, 392), 0, 0),
        ("spoon", (325, 65, 425, 325), 0, 1),
    ],
    "rocket": [  # 640 x 427
        ("rocket", (295, 120, 340, 405), 0, 0),
        ("tower", (0, 0, 88, 427), 1, 0),
        ("tower", (558, 0, 640, 427), 1, 0),
    ],
    "motorcycle_left": [("motorbike", (95, 80, 592, 425), 0, 0)],  # 741 x 500
    "camera": [  # 512 x 512
        ("person", (0, 62, 330, 512), 1, 0),
        ("tripod", (232, 138, 410, 512), 1, 0),
    ],
}
TRAIN = ("astronaut", "coffee", "rocket")
VAL = ("chelsea", "motorcycle_left", "camera")


def _original_sizes() -> dict[str, tuple[int, int]]:
    """(H, W) of the photos at full resolution (boxes above are given in these pixels)."""
    return {name: im.shape[:2] for name, im in photos(max_side=10_000).items() if name in OBJECTS}


def _write_xml(path: str, name: str, hw: tuple[int, int], objects: list) -> None:
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "VOC2007"
    ET.SubElement(root, "filename").text = f"{name}.jpg"
    size = ET.SubElement(root, "size")
    for tag, val in (("width", hw[1]), ("height", hw[0]), ("depth", 3)):
        ET.SubElement(size, tag).text = str(val)
    for cls, (x0, y0, x1, y1), trunc, diff in objects:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = cls
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = str(trunc)
        ET.SubElement(obj, "difficult").text = str(diff)
        box = ET.SubElement(obj, "bndbox")
        # VOC stores 1-based inclusive pixel indices: continuous [x0, x1) -> xmin = x0 + 1, xmax = x1
        for tag, val in (("xmin", x0 + 1), ("ymin", y0 + 1), ("xmax", x1), ("ymax", y1)):
            ET.SubElement(box, tag).text = str(int(round(val)))
    ET.indent(root)
    ET.ElementTree(root).write(path)


@register_sample("voc")
def make_voc_sample(out_dir: str, max_side: int = 480) -> str:
    """Write the sample under ``out_dir/VOC2007`` and return that data root."""
    from PIL import Image

    root = os.path.join(out_dir, "VOC2007")
    for sub in ("JPEGImages", "Annotations", os.path.join("ImageSets", "Main")):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    full = _original_sizes()
    ims = photos(max_side=max_side)
    for name, objects in OBJECTS.items():
        img = ims[name]
        sy, sx = img.shape[0] / full[name][0], img.shape[1] / full[name][1]
        scaled = [
            (c, (x0 * sx, y0 * sy, min(x1 * sx, img.shape[1]), min(y1 * sy, img.shape[0])), t, d)
            for c, (x0, y0, x1, y1), t, d in objects
        ]
        Image.fromarray(np.ascontiguousarray(img)).save(os.path.join(root, "JPEGImages", f"{name}.jpg"), quality=92)
        _write_xml(os.path.join(root, "Annotations", f"{name}.xml"), name, img.shape[:2], scaled)
    for split, names in (("train", TRAIN), ("val", VAL), ("trainval", TRAIN + VAL)):
        with open(os.path.join(root, "ImageSets", "Main", f"{split}.txt"), "w") as f:
            f.write("".join(f"{n}\n" for n in names))
    return root
