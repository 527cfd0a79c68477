"""Each bad input ends in one 'error: ...' line naming the file or key and the fix, exit code 2, and leaves the
checkpoints already in the work dir untouched. Runs the tools in-process (tests/reliability/conftest.py)."""
from __future__ import annotations

import hashlib
import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from reliability_utils import call_tool, copy_sample, error_line, write_config

FAST = dict(deterministic=False, iters=1, batch=8)  # one batch holds all 8 training images


def snapshot(work: str) -> dict[str, str]:
    """sha256 of every checkpoint and of the last_checkpoint pointer in ``work``."""
    out = {}
    for name in sorted(os.listdir(work)):
        if name.endswith(".pth") or name == "last_checkpoint":
            with open(osp.join(work, name), "rb") as f:
                out[name] = hashlib.sha256(f.read()).hexdigest()
    return out


@pytest.fixture
def good_work(trained_run, tmp_path) -> str:
    """A work dir holding the good checkpoints of the reference run (its pointer rewritten to the copy)."""
    work = str(tmp_path / "work")
    os.makedirs(work)
    for name in os.listdir(trained_run):
        if name.endswith(".pth"):
            shutil.copy(osp.join(trained_run, name), work)
    with open(osp.join(work, "last_checkpoint"), "w") as f:
        f.write(osp.join(work, "iter_6.pth"))
    return work


@pytest.fixture
def sample_copy(ade_root, tmp_path) -> str:
    return copy_sample(ade_root, str(tmp_path / "ade"))


def train_fails(capsys, work: str, cfg: str, *extra: str) -> str:
    before = snapshot(work)
    code, err = call_tool("train.py", cfg, "--work-dir", work, *extra, capsys=capsys)
    assert code == 2, err[-3000:]
    assert snapshot(work) == before  # nothing written over (or beside) the good checkpoints
    return error_line(err)


def test_missing_data_root(capsys, good_work, ade_root, tmp_path):
    cfg = write_config(str(tmp_path / "c_root.py"), ade_root, **FAST)
    line = train_fails(capsys, good_work, cfg, "--data-root", str(tmp_path / "nowhere"))
    assert line == (f"error: dataset not found: train_dataloader looks for '{tmp_path / 'nowhere'}' (ADE20KDataset); "
                    "put the data there or pass --data-root DIR (or --cfg-options "
                    "train_dataloader.dataset.data_root=DIR)")


def test_missing_split_file(capsys, good_work, ade_root, tmp_path):
    cfg = write_config(str(tmp_path / "c_split.py"), ade_root, **FAST)
    line = train_fails(capsys, good_work, cfg, "--cfg-options", "train_dataloader.dataset.ann_file=splits/train.txt")
    assert line.startswith(f"error: dataset not found: train_dataloader looks for '{ade_root}/splits/train.txt'")


def test_empty_split(capsys, good_work, sample_copy, tmp_path):
    os.makedirs(osp.join(sample_copy, "splits"))
    open(osp.join(sample_copy, "splits", "train.txt"), "w").close()
    cfg = write_config(str(tmp_path / "c_empty.py"), sample_copy, **FAST)
    line = train_fails(capsys, good_work, cfg, "--cfg-options", "train_dataloader.dataset.ann_file=splits/train.txt")
    assert line == (f"error: train_dataloader has no samples: nothing found in {sample_copy}/images/training (*.jpg), "
                    f"split file {sample_copy}/splits/train.txt: check the folder, the split file and "
                    "img_suffix/seg_map_suffix, or pass --data-root DIR")


def test_corrupt_image(capsys, good_work, sample_copy, tmp_path):
    bad = osp.join(sample_copy, "images", "training", "coffee.jpg")
    with open(bad, "wb") as f:
        f.write(b"\xff\xd8 this is not a JPEG")
    cfg = write_config(str(tmp_path / "c_corrupt.py"), sample_copy, **FAST)
    line = train_fails(capsys, good_work, cfg)
    assert line.startswith(f"error: cannot read {bad} (LoadImageFromFile: ")
    assert line.endswith("replace or remove the file (tools/check_dataset.py lists every bad file)")


def test_label_out_of_range(capsys, good_work, sample_copy, tmp_path):
    png = osp.join(sample_copy, "annotations", "training", "astronaut.png")
    lab = np.array(Image.open(png))
    lab[:10, :10] = 200  # ADE id 200 -> class 199 after reduce_zero_label; 150 classes
    Image.fromarray(lab).save(png)
    cfg = write_config(str(tmp_path / "c_range.py"), sample_copy, **FAST)
    line = train_fails(capsys, good_work, cfg)
    assert line == (f"error: {png}: label values 199 outside 0..149 (ignore_index 255): fix the annotation, or set "
                    "num_classes / reduce_zero_label to match the dataset")


@pytest.mark.parametrize("kind", ["16-bit", "RGB"])
def test_label_map_of_another_mode(capsys, good_work, sample_copy, tmp_path, kind):
    # what the file holds is checked before mmseg's astype(np.uint8): 300 would silently become class 43
    png = osp.join(sample_copy, "annotations", "training", "chelsea.png")
    lab = np.array(Image.open(png))
    if kind == "16-bit":
        lab = lab.astype(np.uint16)
        lab[:1, :5] = 300
    else:
        lab = np.stack([lab] * 3, -1)
    Image.fromarray(lab).save(png)
    cfg = write_config(str(tmp_path / "c_mode.py"), sample_copy, **FAST)
    line = train_fails(capsys, good_work, cfg)
    assert line == f"error: {png}: " + (
        "a 16-bit label map with values up to 300 (5 pixels above 255): labels are read as 8 bits, so 300 would "
        "become class 44; save the map as 8-bit class indices (or remap ids)" if kind == "16-bit" else
        "a 3-channel RGB image, not a single-channel label map: labels must be class indices (PNG mode L or P); "
        "convert colour-coded labels to class ids first")


def test_label_size_mismatch(capsys, good_work, sample_copy, tmp_path):
    png = osp.join(sample_copy, "annotations", "training", "rocket.png")
    img = osp.join(sample_copy, "images", "training", "rocket.jpg")
    lab = Image.open(png)
    w, h = lab.size
    lab.resize((w // 2, h // 2), Image.NEAREST).save(png)
    cfg = write_config(str(tmp_path / "c_size.py"), sample_copy, **FAST)
    line = train_fails(capsys, good_work, cfg)
    assert line == (f"error: {png} is {w // 2}x{h // 2} but its image {img} is {w}x{h} (WxH): labels must have the "
                    "image's size; fix or remove the pair")


def test_checkpoint_of_another_architecture(capsys, trained_run, ade_root, tmp_path):
    cfg = write_config(str(tmp_path / "c_arch.py"), ade_root, dim=48, deterministic=False)
    ckpt = osp.join(trained_run, "iter_6.pth")
    code, err = call_tool("test.py", cfg, ckpt, "--work-dir", str(tmp_path / "w"), capsys=capsys)
    assert code == 2
    assert error_line(err).startswith(
        f"error: {ckpt} does not fit this model (40 shape mismatches): backbone.vit.cls_token: checkpoint (1, 1, 32) "
        "vs model (1, 1, 48): it was trained with another architecture; use the config it was trained with")


def test_register_count_differs(capsys, trained_run, ade_root, tmp_path):
    cfg = write_config(str(tmp_path / "c_regs.py"), ade_root, regs=0, deterministic=False)
    ckpt = osp.join(trained_run, "iter_6.pth")
    code, err = call_tool("test.py", cfg, ckpt, "--work-dir", str(tmp_path / "w"), capsys=capsys)
    assert code == 2
    assert error_line(err) == (
        f"error: {ckpt} has 2 register tokens (backbone.vit.reg_token) but the model has 0: set "
        "model.backbone.num_register_tokens=2 (or use the config the checkpoint was trained with)")


def test_register_count_differs_for_pretrained_backbone(capsys, good_work, trained_run, ade_root, tmp_path):
    # a RegViT backbone checkpoint with 2 registers given to a config whose backbone has 4 (init_cfg=Pretrained)
    sd = torch.load(osp.join(trained_run, "iter_6.pth"), weights_only=True)["state_dict"]
    backbone = {k[len("backbone.vit."):]: v for k, v in sd.items() if k.startswith("backbone.vit.")}
    path = str(tmp_path / "regvit_reg2.pth")
    torch.save(backbone, path)
    cfg = write_config(str(tmp_path / "c_pre.py"), ade_root, regs=4, **FAST,
                       extra=f"model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint={path!r}, "
                             "source='native')))")
    line = train_fails(capsys, good_work, cfg)
    assert line == "error: checkpoint has 2 register tokens but the model has 4: set num_register_tokens=2"


def test_nan_loss_stops_and_keeps_last_good_checkpoint(capsys, ade_root, tmp_path):
    work = str(tmp_path / "work")
    cfg = write_config(str(tmp_path / "c_nan.py"), ade_root, deterministic=False, extra_imports=", 'reliability_hooks'",
                       extra="custom_hooks = [dict(type='PoisonLossHook', at=3)]")
    code, err = call_tool("train.py", cfg, "--work-dir", work, capsys=capsys)
    assert code == 2
    good = osp.join(work, "iter_2.pth")
    assert error_line(err).startswith(
        f"error: non-finite loss at iteration 4 (loss=nan, decode.loss_ce=nan); training stopped, the last good "
        f"checkpoint is {good}: lower the learning rate (--cfg-options optim_wrapper.optimizer.lr=...; on --resume the "
        "new lr is applied to the schedule), add gradient clipping")
    assert sorted(n for n in os.listdir(work) if n.endswith(".pth")) == ["iter_2.pth"]
    with open(osp.join(work, "last_checkpoint")) as f:
        assert f.read() == good
    sd = torch.load(good, weights_only=True)["state_dict"]
    assert all(torch.isfinite(v).all() for v in sd.values() if v.is_floating_point())


def test_checkpoint_needing_code_is_refused_unless_trusted(capsys, trained_run, ade_root, tmp_path):
    from reliability_hooks import Marker

    ckpt = torch.load(osp.join(trained_run, "iter_6.pth"), weights_only=True)
    ckpt["meta"]["note"] = Marker()
    del ckpt["meta"]["content_sha256"]  # changed on purpose (the recorded checksum would refuse it as damaged)
    path = str(tmp_path / "pickled.pth")
    torch.save(ckpt, path)
    cfg = write_config(str(tmp_path / "c_pickle.py"), ade_root, deterministic=False)
    code, err = call_tool("test.py", cfg, path, "--work-dir", str(tmp_path / "w"), capsys=capsys)
    assert code == 2
    assert error_line(err) == (
        f"error: {path} needs arbitrary code to unpickle (it holds reliability_hooks.Marker), so it was refused: pass "
        "--trust-pickle only if you trust its source, or re-save its state_dict (tools/convert_checkpoint.py)")
    code, err = call_tool("test.py", cfg, path, "--work-dir", str(tmp_path / "w"), "--trust-pickle", capsys=capsys)
    assert code == 0, err[-3000:]
