"""Denoising datasets and transforms: layouts, .mat blocks, synthetic noise statistics, paired augmentation,
and the error paths (missing folder, unpaired files, bad .mat)."""
import os

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

import dense_adapters.datasets  # noqa: F401  (registers)
from dense_adapters.datasets.denoise import (AddSyntheticNoise, DenoisePairDataset, PairedRandomCrop,
                                             PairedRandomFlip, SIDDValMatDataset, SyntheticNoiseDataset)
from dense_adapters.datasets.samples import photos
from dense_adapters.errors import DataError



@pytest.fixture(autouse=True)
def mmseg_scope():
    """Pipelines name our transforms 'dense_adapters.X', resolved from mmseg's scope as in the Runner."""
    from mmengine.registry import DefaultScope

    with DefaultScope.overwrite_default_scope("mmseg"):
        yield


PIPE = [dict(type="dense_adapters.LoadImagePair"), dict(type="dense_adapters.PackRestorationInputs")]


def save(path, arr):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(arr).save(path)


def test_folder_pairs_from_sample(denoise_sample):
    ds = DenoisePairDataset(data_root=denoise_sample, subdir="val", pipeline=PIPE)
    assert len(ds) == 4
    item = ds[0]
    x, s = item["inputs"], item["data_samples"]
    assert x.dtype == s.gt_img.dtype == torch.uint8 and x.shape == s.gt_img.shape
    assert x.shape[0] == 3 and s.img_shape == tuple(x.shape[1:])
    noisy = np.array(Image.open(s.img_path).convert("RGB"))
    assert np.array_equal(x.permute(1, 2, 0).numpy(), noisy)
    diff = x.float() - s.gt_img.float()  # sample noise: sigma 25, so the pair is a real noisy/clean pair
    assert 20 < diff.std() < 27


def test_sidd_layout(tmp_path):
    ims = photos(max_side=40)
    for scene, name in (("0001_001_S6_00100_00060_3200_L", "astronaut"), ("0002_001_S6_00100_00020_3200_N", "coffee")):
        for k in ("010", "011"):
            save(str(tmp_path / "Data" / scene / f"GT_SRGB_{k}.PNG"), ims[name])
            save(str(tmp_path / "Data" / scene / f"NOISY_SRGB_{k}.PNG"), 255 - ims[name])
    ds = DenoisePairDataset(data_root=str(tmp_path), pipeline=PIPE)
    assert len(ds) == 4
    info = ds.get_data_info(3)
    assert info["noisy_path"].endswith("NOISY_SRGB_011.PNG") and info["gt_path"].endswith("GT_SRGB_011.PNG")
    item = ds[3]
    assert (item["inputs"] == 255 - item["data_samples"].gt_img).all()
    os.remove(tmp_path / "Data" / "0002_001_S6_00100_00020_3200_N" / "GT_SRGB_011.PNG")
    with pytest.raises(FileNotFoundError, match="GT_SRGB_011"):
        DenoisePairDataset(data_root=str(tmp_path))


def test_missing_folder_and_unpaired_files(tmp_path, denoise_sample):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        DenoisePairDataset(data_root=str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        DenoisePairDataset(data_root=denoise_sample, subdir="val", gt_dir="groundtruth")
    img = photos(max_side=32)["coins"]
    for n in ("a", "b"):
        save(str(tmp_path / "noisy" / f"{n}.png"), img)
    save(str(tmp_path / "gt" / "a.png"), img)
    save(str(tmp_path / "gt" / "c.png"), img)
    with pytest.raises(ValueError, match="unpaired files.*'b'.*'c'"):
        DenoisePairDataset(data_root=str(tmp_path))
    os.makedirs(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no images"):
        SyntheticNoiseDataset(data_root=str(tmp_path), img_dir="empty")


def test_sidd_validation_mat(tmp_path):
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (2, 3, 24, 20, 3), dtype=np.uint8)
    noisy = rng.integers(0, 256, gt.shape, dtype=np.uint8)
    scipy.io.savemat(tmp_path / "ValidationNoisyBlocksSrgb.mat", {"ValidationNoisyBlocksSrgb": noisy})
    scipy.io.savemat(tmp_path / "ValidationGtBlocksSrgb.mat", {"ValidationGtBlocksSrgb": gt})
    ds = SIDDValMatDataset(data_root=str(tmp_path), pipeline=PIPE, test_mode=True)
    assert len(ds) == 6
    item = ds[4]  # block-major: image 1, block 1
    assert np.array_equal(item["inputs"].permute(1, 2, 0).numpy(), noisy[1, 1])
    assert np.array_equal(item["data_samples"].gt_img.permute(1, 2, 0).numpy(), gt[1, 1])


def test_bad_mat_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SIDDValMatDataset(data_root=str(tmp_path))
    (tmp_path / "ValidationNoisyBlocksSrgb.mat").write_bytes(b"this is not a MATLAB file" * 10)
    scipy.io.savemat(tmp_path / "ValidationGtBlocksSrgb.mat", {"x": np.zeros((4, 4))})
    with pytest.raises(ValueError, match="cannot read"):
        SIDDValMatDataset(data_root=str(tmp_path))
    scipy.io.savemat(tmp_path / "ValidationNoisyBlocksSrgb.mat", {"v": np.zeros((1, 2, 8, 8, 3), np.uint8)})
    with pytest.raises(ValueError, match="no \\[..., H, W, 3\\] image blocks"):
        SIDDValMatDataset(data_root=str(tmp_path))
    scipy.io.savemat(tmp_path / "ValidationGtBlocksSrgb.mat", {"v": np.zeros((1, 3, 8, 8, 3), np.uint8)})
    with pytest.raises(ValueError, match="differ"):
        SIDDValMatDataset(data_root=str(tmp_path))


def test_gaussian_noise_statistics_and_seeding():
    flat = np.full((200, 200, 3), 128, np.uint8)
    t = AddSyntheticNoise("gaussian", sigma=15.0)
    a = t(dict(gt=flat, noise_seed=3))["img"]
    b = t(dict(gt=flat, noise_seed=3))["img"]
    c = t(dict(gt=flat, noise_seed=None))["img"]
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    d = a.astype(float) - 128
    assert abs(d.mean()) < 0.3 and abs(d.std() - 15.0) < 0.3


def test_poisson_gaussian_noise_variance():
    a_, b_ = 0.02, 0.01
    t = AddSyntheticNoise("poisson_gaussian", a=a_, b=b_)
    for level in (64, 160):
        gt = np.full((200, 200, 3), level, np.uint8)
        y = t(dict(gt=gt, noise_seed=0))["img"].astype(float) / 255
        x = level / 255
        assert abs(y.mean() - x) < 0.01
        want = np.sqrt(a_ * x + b_**2)  # Poisson(x/a)*a has variance a*x
        assert abs(y.std() - want) / want < 0.05
    with pytest.raises(ValueError, match="noise mode"):
        AddSyntheticNoise("speckle")


def test_paired_crop_and_flips_keep_pairs_aligned():
    gt = photos(max_side=64)["astronaut"]
    img = ((gt.astype(int) + 7) % 256).astype(np.uint8)  # a fixed pixel-wise relation between the two
    crop, flip = PairedRandomCrop(24), PairedRandomFlip(prob=0.5)
    np.random.seed(0)
    seen = set()
    for _ in range(20):
        r = flip(crop(dict(img=img, gt=gt)))
        assert r["img"].shape == r["gt"].shape == (24, 24, 3)
        assert np.array_equal(r["img"], ((r["gt"].astype(int) + 7) % 256).astype(np.uint8))
        seen.add(r["gt"].tobytes())
    assert len(seen) > 10
    with pytest.raises(ValueError, match="smaller than the crop"):
        PairedRandomCrop(100)(dict(img=img, gt=gt, img_path="x.png"))


def test_synthetic_dataset_fixed_heldout_noise(denoise_sample):
    pipe = [dict(type="dense_adapters.LoadImagePair"),
            dict(type="dense_adapters.AddSyntheticNoise", sigma=25.0),
            dict(type="dense_adapters.PackRestorationInputs")]
    ds = SyntheticNoiseDataset(data_root=denoise_sample, img_dir="val/gt", seed=0, pipeline=pipe, test_mode=True)
    assert len(ds) == 4
    assert (ds[1]["inputs"] == ds[1]["inputs"]).all() and not (ds[1]["inputs"] == ds[1]["data_samples"].gt_img).all()
    train = SyntheticNoiseDataset(data_root=denoise_sample, img_dir="train/gt", pipeline=pipe)
    assert len(train) == 8 and not (train[0]["inputs"] == train[0]["inputs"]).all()
    with pytest.raises(DataError, match="AddSyntheticNoise"):
        SyntheticNoiseDataset(data_root=denoise_sample, img_dir="val/gt", pipeline=PIPE)[0]
