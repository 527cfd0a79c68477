"""Video denoising data: layouts (DAVIS 2017, folders of frame folders, one frame folder), clips and whole
sequences, transforms identical across frames, reproducible noise, one-line errors."""
import os

import numpy as np
import pytest
from PIL import Image

from dense_adapters.datasets.denoise import (AddSyntheticNoise, PackRestorationInputs, PairedRandomCrop,
                                             PairedRandomFlip)
from dense_adapters.datasets.video import LoadVideoFrames, VideoFramesDataset, find_sequences
from dense_adapters.errors import DataError, UserError


@pytest.fixture(autouse=True)
def mmseg_scope():
    """Pipelines name our transforms 'dense_adapters.X', resolved from mmseg's scope as in the Runner."""
    from mmengine.registry import DefaultScope

    with DefaultScope.overwrite_default_scope("mmseg"):
        yield


def write_frames(folder, n, size=(20, 30), ext="png"):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(len(folder) + n)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(os.path.join(folder, f"{i:05d}.{ext}"))


@pytest.fixture
def davis(tmp_path):
    root = tmp_path / "DAVIS"
    for name, n in (("bear", 9), ("car", 5), ("dog", 7)):
        write_frames(str(root / "JPEGImages" / "480p" / name), n, ext="jpg")
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "train.txt").write_text("bear\ncar\n")
    (root / "ImageSets" / "2017" / "val.txt").write_text("dog\n")
    return str(root)


def test_davis_layout_and_splits(davis):
    layout, seqs = find_sequences(davis)
    assert layout == "davis" and sorted(seqs) == ["bear", "car", "dog"]
    assert [os.path.basename(p) for p in seqs["car"]] == [f"{i:05d}.jpg" for i in range(5)]
    assert sorted(find_sequences(davis, split="train")[1]) == ["bear", "car"]
    assert list(find_sequences(davis, split="val")[1]) == ["dog"]


def test_folder_of_frame_folders_and_single_folder(tmp_path):
    write_frames(str(tmp_path / "clips" / "a"), 4)
    write_frames(str(tmp_path / "clips" / "b"), 3)
    assert find_sequences(str(tmp_path / "clips")) == ("folders", find_sequences(str(tmp_path / "clips"))[1])
    assert sorted(find_sequences(str(tmp_path / "clips"))[1]) == ["a", "b"]
    layout, seqs = find_sequences(str(tmp_path / "clips" / "a"))
    assert layout == "frames" and list(seqs) == ["a"] and len(seqs["a"]) == 4


def test_clips_and_whole_sequences(davis):
    train = VideoFramesDataset(data_root=davis, split="train", num_frames=7, lazy_init=False)
    assert len(train) == 9 - 7 + 1  # car (5 frames) is too short for a 7-frame clip
    info = train.get_data_info(2)
    assert info["sequence"] == "bear" and info["frame_start"] == 2 and len(info["frame_paths"]) == 7
    assert info["frame_paths"][0].endswith("00002.jpg") and info["noise_seed"] is None
    strided = VideoFramesDataset(data_root=davis, num_frames=3, clip_stride=2)
    assert len(strided) == 4 + 2 + 3  # bear 0,2,4,6; car 0,2; dog 0,2,4
    val = VideoFramesDataset(data_root=davis, whole_sequences=True, max_frames=6, seed=10)
    assert [(d["sequence"], len(d["frame_paths"]), d["noise_seed"]) for d in map(val.get_data_info, range(3))] == [
        ("bear", 6, 10), ("car", 5, 11), ("dog", 6, 12)]


def test_loaded_sample_through_the_pipeline(davis):
    pipeline = [dict(type="dense_adapters.LoadVideoFrames"), dict(type="dense_adapters.PairedRandomCrop", crop_size=16),
                dict(type="dense_adapters.AddSyntheticNoise", sigma=30, clip=False, quantize=False),
                dict(type="dense_adapters.PackRestorationInputs")]
    ds = VideoFramesDataset(data_root=davis, split="val", num_frames=4, pipeline=pipeline)
    out = ds[1]
    assert out["inputs"].shape == (4, 3, 16, 16) and out["inputs"].dtype.is_floating_point
    s = out["data_samples"]
    assert s.gt_img.shape == (4, 3, 16, 16) and s.gt_img.dtype.itemsize == 1
    assert s.sequence == "dog" and s.frame_start == 1 and s.img_shape == (16, 16)
    frames = np.stack([np.array(Image.open(p)) for p in s.frame_paths])  # the crop of the frames on disk
    gt = s.gt_img.numpy().transpose(0, 2, 3, 1)
    assert any(np.array_equal(frames[:, i:i + 16, j:j + 16], gt) for i in range(5) for j in range(15))


def clip_of_offsets(T=5, H=12, W=18):
    """Frames that differ by a constant per frame: base + 10 t. A transform applied identically to every frame
    keeps out[t] - out[0] == 10 t everywhere."""
    base = np.random.default_rng(0).integers(0, 150, (H, W, 3), dtype=np.uint8)
    return np.stack([base + 10 * t for t in range(T)]).astype(np.uint8), base


@pytest.mark.parametrize("seed", range(6))
def test_crop_and_flips_are_identical_across_frames(seed):
    clip, base = clip_of_offsets()
    np.random.seed(seed)
    r = PairedRandomCrop(crop_size=(8, 8))(dict(gt=clip.copy(), img=clip.copy()))
    r = PairedRandomFlip(prob=0.5)(r)
    for k in ("img", "gt"):
        d = r[k].astype(int) - r[k][:1].astype(int)
        assert all((d[t] == 10 * t).all() for t in range(len(clip)))
    # and frame 0 went through exactly what the image path does with the same random draws
    np.random.seed(seed)
    im = PairedRandomFlip(prob=0.5)(PairedRandomCrop(crop_size=(8, 8))(dict(gt=base.copy())))
    assert np.array_equal(r["gt"][0], im["gt"])


def test_temporal_flip_reverses_frames_only_when_asked():
    clip, _ = clip_of_offsets()
    r = PairedRandomFlip(prob=1.0, directions=("temporal",))(dict(gt=clip.copy(), frame_paths=list("abcde")))
    assert np.array_equal(r["gt"], clip[::-1]) and r["frame_paths"] == list("edcba")
    with pytest.raises(ValueError, match="frames"):
        PairedRandomFlip(prob=1.0, directions=("temporal",))(dict(gt=clip[0].copy()))


def test_noise_is_reproducible_and_at_the_asked_sigma():
    clip = np.full((7, 32, 32, 3), 128, np.uint8)
    noise = AddSyntheticNoise(sigma=30, clip=False, quantize=False)
    a = noise(dict(gt=clip, noise_seed=3))["img"]
    assert np.array_equal(a, noise(dict(gt=clip, noise_seed=3))["img"])
    assert not np.array_equal(a, noise(dict(gt=clip, noise_seed=4))["img"])
    assert not np.array_equal(noise(dict(gt=clip))["img"], noise(dict(gt=clip))["img"])  # training: fresh noise
    assert a.dtype == np.float32 and abs((a - 128.0).std() - 30) < 0.5 and abs((a - 128.0).mean()) < 0.5
    assert a.min() < 128 - 3 * 30  # unclipped (0..255 would cut nothing here; check the tails exist at all)
    dark = AddSyntheticNoise(sigma=30, clip=False, quantize=False)(dict(gt=np.zeros_like(clip), noise_seed=0))["img"]
    assert dark.min() < 0  # the video protocol feeds unclipped noise
    u8 = AddSyntheticNoise(sigma=30)(dict(gt=clip, noise_seed=3))["img"]  # the image default: clipped uint8
    diff = np.abs(u8.astype(float) - np.clip(np.round(a), 0, 255))  # a is float32: rounding may differ at .5
    assert u8.dtype == np.uint8 and diff.max() <= 1 and (diff == 0).mean() > 0.999
    with pytest.raises(ValueError, match="clip=True"):
        AddSyntheticNoise(clip=False, quantize=True)


def test_pack_frames():
    clip, _ = clip_of_offsets()
    out = PackRestorationInputs()(dict(gt=clip, img=clip.astype(np.float32), sequence="x", frame_start=0))
    assert out["inputs"].shape == (5, 3, 12, 18) and out["data_samples"].gt_img.shape == (5, 3, 12, 18)
    assert (out["data_samples"].gt_img[2].permute(1, 2, 0).numpy() == clip[2]).all()


def test_errors(tmp_path, davis):
    with pytest.raises(DataError, match="does not exist"):
        find_sequences(str(tmp_path / "nope"))
    with pytest.raises(DataError, match="resolution"):
        find_sequences(davis, resolution="1080p")
    with pytest.raises(DataError, match="missing"):
        (tmp_path / "DAVIS" / "ImageSets" / "2017" / "bad.txt").write_text("bear\nzebra\n")
        find_sequences(davis, split="bad")
    with pytest.raises(DataError, match="sequence list"):
        find_sequences(davis, split="test-dev")
    with pytest.raises(UserError, match="layout"):
        find_sequences(davis, layout="mp4")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="no frame folders"):
        find_sequences(str(tmp_path / "empty"))
    with pytest.raises(DataError, match="num_frames"):
        VideoFramesDataset(data_root=davis, num_frames=50)
    seq = str(tmp_path / "mixed")
    write_frames(seq, 2, size=(20, 30))
    write_frames(seq + "_b", 1, size=(22, 30))
    os.rename(os.path.join(seq + "_b", "00000.png"), os.path.join(seq, "00002.png"))
    paths = sorted(os.path.join(seq, f) for f in os.listdir(seq))
    with pytest.raises(DataError, match="one size"):
        LoadVideoFrames()(dict(frame_paths=paths))
    open(os.path.join(seq, "00001.png"), "wb").write(b"not a png")
    with pytest.raises(DataError, match="cannot read frame"):
        LoadVideoFrames()(dict(frame_paths=paths))
