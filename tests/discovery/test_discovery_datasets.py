"""Box readers for object discovery (VOC, COCO20k, folders), padding/batching helpers and the VOC sample."""
import json
import os
from xml.etree import ElementTree as ET

import numpy as np
import pytest
import torch
from PIL import Image

from dense_adapters.datasets.discovery import (COCO20kBoxes, FolderImages, VOCBoxes, build_discovery_dataset,
                                               normalize_image, pad_to, padded_size, parse_voc_xml, size_batches)
from dense_adapters.datasets.samples.voc import OBJECTS, make_voc_sample


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory) -> str:
    return make_voc_sample(str(tmp_path_factory.mktemp("voc")), max_side=160)


def test_voc_sample_layout_and_boxes(voc_root):
    ds = VOCBoxes(voc_root, "trainval")
    assert len(ds) == len(OBJECTS) and {it.name for it in ds} == set(OBJECTS)
    assert len(VOCBoxes(voc_root, "train")) + len(VOCBoxes(voc_root, "val")) == len(OBJECTS)
    for i, it in enumerate(ds):
        img = ds.load(i)
        assert img.dtype == np.uint8 and img.ndim == 3 and max(img.shape[:2]) == 160
        assert len(it.boxes) == len(OBJECTS[it.name]) == len(it.labels)
        H, W = img.shape[:2]
        assert (it.boxes[:, 0] >= 0).all() and (it.boxes[:, 2] <= W).all() and (it.boxes[:, 3] <= H).all()
        assert (it.boxes[:, 2] > it.boxes[:, 0]).all() and (it.boxes[:, 3] > it.boxes[:, 1]).all()
    # the cat box of chelsea (30..400 of 451 px wide, full height) scaled to 160 px
    cat = ds[[it.name for it in ds].index("chelsea")].boxes[0]
    np.testing.assert_allclose(cat, [30 * 160 / 451, 0, 400 * 160 / 451, 300 * 160 / 451], atol=1.0)


def test_voc_xml_is_one_based_and_hards_follow_lost(tmp_path):
    ann = ET.Element("annotation")
    for name, box, trunc, diff in (("dog", (1, 1, 50, 40), 0, 0), ("cat", (10, 20, 30, 40), 1, 0),
                                   ("cow", (5, 5, 9, 9), 0, 1)):
        o = ET.SubElement(ann, "object")
        ET.SubElement(o, "name").text = name
        ET.SubElement(o, "truncated").text = str(trunc)
        ET.SubElement(o, "difficult").text = str(diff)
        bb = ET.SubElement(o, "bndbox")
        for tag, v in zip(("xmin", "ymin", "xmax", "ymax"), box):
            ET.SubElement(bb, tag).text = str(v)
    path = tmp_path / "a.xml"
    ET.ElementTree(ann).write(path)
    boxes, labels = parse_voc_xml(str(path))
    assert labels == ["dog", "cat", "cow"]
    assert boxes.tolist()[0] == [0, 0, 50, 40]  # (xmin - 1, ymin - 1, xmax, ymax)
    boxes, labels = parse_voc_xml(str(path), remove_hards=True)
    assert labels == ["dog"]


def test_voc_no_hard_skips_images_with_only_hard_objects(voc_root):
    full, easy = VOCBoxes(voc_root, "trainval"), VOCBoxes(voc_root, "trainval", remove_hards=True)
    # chelsea (cat truncated), astronaut and camera (everything truncated) have only hard objects
    assert easy.num_skipped == 3 and len(easy) == len(full) - 3
    coffee = easy[[it.name for it in easy].index("coffee")]
    assert coffee.labels == ["cup", "saucer"]  # the difficult spoon is dropped


def test_missing_root_and_split_give_clear_errors(voc_root, tmp_path):
    with pytest.raises(FileNotFoundError, match="VOC data root .* does not exist"):
        VOCBoxes(str(tmp_path / "nope"), "trainval")
    with pytest.raises(FileNotFoundError, match="VOC split file .*test.txt.* not found"):
        VOCBoxes(voc_root, "test")
    with pytest.raises(FileNotFoundError, match="COCO20k file list"):
        COCO20kBoxes(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no images"):
        FolderImages(str(tmp_path))
    with pytest.raises(ValueError, match="unknown dataset"):
        build_discovery_dataset("VOC99", voc_root)


def test_coco20k_drops_crowds_rounds_boxes_and_skips_empty(tmp_path):
    img_dir = tmp_path / "train2014"
    img_dir.mkdir()
    names = {9: "COCO_train2014_000000000009.jpg", 25: "COCO_train2014_000000000025.jpg",
             30: "COCO_train2014_000000000030.jpg"}
    for n in names.values():
        Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(img_dir / n)
    coco = {
        "images": [{"id": i, "file_name": n, "height": 20, "width": 30} for i, n in names.items()],
        "annotations": [
            {"image_id": 9, "bbox": [1.4, 2.6, 10.2, 5.0], "iscrowd": 0, "category_id": 1},
            {"image_id": 9, "bbox": [0, 0, 30, 20], "iscrowd": 1, "category_id": 1},
            {"image_id": 25, "bbox": [3, 3, 4, 4], "iscrowd": 1, "category_id": 2},
            {"image_id": 30, "bbox": [5.5, 6.5, 10, 10], "iscrowd": 0, "category_id": 3},
        ],
        "categories": [],
    }
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_train2014.json").write_text(json.dumps(coco))
    (tmp_path / "coco_20k_filenames.txt").write_text("".join(f"train2014/{names[i]}\n" for i in (30, 9, 25)))
    ds = build_discovery_dataset("COCO20k", str(tmp_path))
    assert [it.name for it in ds] == ["30", "9"] and ds.num_skipped == 1  # 25 has only a crowd box
    assert ds[1].boxes.tolist() == [[1, 3, 12, 8]]  # [x, y, x + w, y + h] rounded, crowd dropped
    assert ds[0].boxes.tolist() == [[6, 6, 16, 16]]  # Python's round: half to even, as LOST's int(round())
    assert ds.load(0).shape == (20, 30, 3)


def test_folder_has_no_annotations(voc_root):
    ds = FolderImages(os.path.join(voc_root, "JPEGImages"))
    assert len(ds) == len(OBJECTS) and not ds.has_annotations and ds[0].boxes is None


def test_normalize_pad_and_batches():
    img = np.full((5, 7, 3), 255, np.uint8)
    x = normalize_image(img)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(x[:, 0, 0], (1 - mean) / std)
    assert padded_size((5, 7), 4) == (8, 8) and padded_size((8, 9), 4) == (8, 12)
    p = pad_to(x, (8, 8))
    assert p.shape == (3, 8, 8) and torch.equal(p[:, :5, :7], x)
    assert p[:, 5:].abs().sum() == 0 and p[:, :, 7:].abs().sum() == 0  # zeros at the bottom and right
    assert size_batches([(8, 8), (8, 12), (8, 8), (8, 8)], 2) == [[0, 2], [3], [1]]
