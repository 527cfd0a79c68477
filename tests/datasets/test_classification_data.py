"""Image-folder data: layout, labels, held-out split, one-line errors on malformed data, timm transforms, sampler."""
import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from dense_adapters.datasets.classification import (ImageFolderDataset, PackClsInputs, TimmClsTransform, _fix_posterize,
                                                    _posterize)
from dense_adapters.datasets.samplers import RepeatAugSampler
from dense_adapters.datasets.samples.classes import CLASSES
from dense_adapters.errors import DataError, DenseAdaptersError, UserError
from dense_adapters.utils import register_all_modules

register_all_modules()  # pipelines name prefixed types under the 'mmseg' default scope, as the configs do


def _ds(root, split="train", **kw):
    return ImageFolderDataset(data_root=root, data_prefix=dict(img_path=split), serialize_data=False, **kw)


def test_sample_layout_and_labels(class_sample):
    train, val = _ds(class_sample), _ds(class_sample, "val", class_dir="train")
    assert train.metainfo["classes"] == CLASSES == val.metainfo["classes"]
    assert len(train) == 16 * len(CLASSES) and len(val) == 6 * len(CLASSES)
    for ds in (train, val):
        for i in range(len(ds)):
            info = ds.get_data_info(i)
            assert CLASSES[info["gt_label"]] == os.path.basename(os.path.dirname(info["img_path"]))
    assert np.bincount(val.get_gt_labels()).tolist() == [6] * len(CLASSES)


def test_heldout_split_is_disjoint_deterministic_and_per_class(class_sample):
    held = _ds(class_sample, subset="heldout", heldout_per_class=4)
    rest = _ds(class_sample, subset="rest", heldout_per_class=4)
    paths = lambda ds: {ds.get_data_info(i)["img_path"] for i in range(len(ds))}  # noqa: E731
    assert np.bincount(held.get_gt_labels()).tolist() == [4] * len(CLASSES)
    assert not paths(held) & paths(rest) and paths(held) | paths(rest) == paths(_ds(class_sample))
    assert paths(held) == paths(_ds(class_sample, subset="heldout", heldout_per_class=4))
    assert paths(held) != paths(_ds(class_sample, subset="heldout", heldout_per_class=4, heldout_seed=1))
    with pytest.raises(DataError, match="too few"):
        _ds(class_sample, subset="heldout", heldout_per_class=16)


def _one_line(excinfo):
    msg = str(excinfo.value)
    assert "\n" not in msg
    return msg


def test_malformed_folders_are_one_line_errors(tmp_path):
    img = Image.new("RGB", (8, 8))
    with pytest.raises(DataError) as e:
        _ds(str(tmp_path), "train")
    assert "not found" in _one_line(e) and "--data-root" in _one_line(e)
    flat = tmp_path / "flat"
    flat.mkdir()
    img.save(flat / "a.JPEG")
    with pytest.raises(DataError) as e:
        _ds(str(tmp_path), "flat")
    assert "no class folders" in _one_line(e)
    (flat / "cat").mkdir()
    img.save(flat / "cat" / "b.jpg")
    with pytest.raises(DataError, match="outside class folders"):
        _ds(str(tmp_path), "flat")
    os.remove(flat / "a.JPEG")
    (flat / "dog").mkdir()
    (flat / "dog" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match="holds no images"):
        _ds(str(tmp_path), "flat")
    assert len(_ds(str(tmp_path), "flat", allow_empty=True)) == 1
    with pytest.raises(DataError, match="is not one of the 1 classes"):
        _ds(str(tmp_path), "flat", classes=["cat"])


def test_ann_file_and_class_list(tmp_path):
    (tmp_path / "val").mkdir()
    for n in ("x.JPEG", "y.JPEG"):
        Image.new("RGB", (8, 8)).save(tmp_path / "val" / n)
    (tmp_path / "classes.txt").write_text("# wnids\nn01\nn02\n")
    (tmp_path / "val.txt").write_text("x.JPEG 1\ny.JPEG n01\n")
    ds = _ds(str(tmp_path), "val", ann_file="val.txt", classes="classes.txt")
    assert ds.metainfo["classes"] == ("n01", "n02") and ds.get_gt_labels().tolist() == [1, 0]
    (tmp_path / "bad.txt").write_text("x.JPEG 7\n")
    with pytest.raises(DataError, match="bad.txt:1: label 7 outside 0..1"):
        _ds(str(tmp_path), "val", ann_file="bad.txt", classes="classes.txt")


def test_corrupt_and_grey_images_through_the_checked_pipeline(class_sample, tmp_path):
    from dense_adapters.datasets.checks import wrap_pipeline

    root = tmp_path / "data"
    shutil.copytree(os.path.join(class_sample, "val"), root / "val")
    bad = root / "val" / "coffee" / "coffee_0000.JPEG"
    bad.write_bytes(bad.read_bytes()[:200])  # truncated JPEG
    pipeline = wrap_pipeline([
        dict(type="LoadImageFromFile", imdecode_backend="pillow", color_type="color_ignore_orientation"),
        dict(type="dense_adapters.TimmClsTransform", input_size=32, crop_pct=0.875, interpolation="bicubic"),
        dict(type="dense_adapters.PackClsInputs")], None, 255)
    ds = ImageFolderDataset(data_root=str(root), data_prefix=dict(img_path="val"), pipeline=pipeline,
                            serialize_data=False)
    grey = next(i for i in range(len(ds)) if "camera" in ds.get_data_info(i)["img_path"])
    out = ds[grey]
    assert out["inputs"].shape == (3, 32, 32) and out["inputs"].dtype == torch.uint8
    assert torch.equal(out["inputs"][0], out["inputs"][1])  # grey photo -> three equal channels
    idx = next(i for i in range(len(ds)) if ds.get_data_info(i)["img_path"] == str(bad))
    with pytest.raises(DenseAdaptersError) as e:  # CheckedLoading's data error
        ds[idx]
    assert str(bad) in _one_line(e)


def test_timm_transform_and_preprocessor_equal_timms_own_eval_transform(class_sample):
    from timm.data import create_transform

    from dense_adapters.models.classifiers.preprocessor import ClsDataPreprocessor

    path = os.path.join(class_sample, "val", "chelsea", "chelsea_0001.JPEG")
    pil = Image.open(path).convert("RGB")
    ref = create_transform(40, crop_pct=0.875, interpolation="bicubic")(pil)  # ToTensor + Normalize
    ours = TimmClsTransform(input_size=40, crop_pct=0.875, interpolation="bicubic", channel_order="rgb")
    packed = PackClsInputs()(ours(dict(img=np.array(pil), img_path=path, gt_label=2)))
    x = ClsDataPreprocessor()(dict(inputs=[packed["inputs"]], data_samples=[packed["data_samples"]]))["inputs"]
    assert torch.allclose(x[0], ref, atol=1e-6)
    assert packed["data_samples"].gt_label.tolist() == [2]
    with pytest.raises(UserError, match="re_prob"):
        TimmClsTransform(re_prob=0.25)


def test_randaugment_posterize_keeps_zero_bits_working():
    img = Image.new("RGB", (16, 16), (200, 100, 50))
    assert np.array(_posterize(img, 0)).max() == 0 and np.array(_posterize(img, 8)).max() == 200
    t = TimmClsTransform(is_training=True, input_size=16, auto_augment="rand-m9-mstd0.5-inc1")
    assert _fix_posterize(t.tf) == 0  # already pointed at ours by the constructor
    ra = next(x for x in t.tf.transforms if hasattr(x, "ops"))
    op = next(o for o in ra.ops if o.name == "PosterizeIncreasing")
    op.magnitude, op.magnitude_std, op.prob = 10, 0, 1.0  # 4 - 4 = 0 bits, which Pillow >= 10 refuses
    assert np.array(op(img)).max() == 0


def _deit_rasampler(n, rank, world, repeats, seed, epoch):
    """DeiT's RASampler (samplers.py), with mmpretrain's ceil(n / world) samples per rank."""
    g = torch.Generator()
    g.manual_seed(seed + epoch)
    idx = [i for i in torch.randperm(n, generator=g).tolist() for _ in range(repeats)]
    per_rank = int(np.ceil(n * repeats / world))
    idx += idx[: per_rank * world - len(idx)]
    return idx[rank : per_rank * world : world][: int(np.ceil(n / world))]


def test_repeat_aug_sampler_matches_deit():
    data = list(range(23))
    for world in (1, 2):
        for rank in range(world):
            s = RepeatAugSampler(data, num_repeats=3, seed=5, num_replicas=world, rank=rank)
            for epoch in (0, 1):
                s.set_epoch(epoch)
                assert list(s) == _deit_rasampler(23, rank, world, 3, 5, epoch)
                assert len(s) == len(list(s))
    s = RepeatAugSampler(data, num_repeats=3, seed=5, num_replicas=1, rank=0)
    first = list(s)
    assert first[0] == first[1] == first[2]  # the copies of an image come together on one process
