"""LOST and denoising tools on hostile inputs: 16-bit grey images give what their 8-bit version gives (PIL's
convert made them white), corrupt and missing images and bad tile options end in one line."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

TINY_VIT = ("backbone = dict(type='dense_adapters.RegViT', embed_dim=32, depth=2, num_heads=2, patch_size=16,\n"
            "                num_register_tokens=2, img_size=64)\n")
TINY_UFORMER = ("model = dict(type='dense_adapters.Restorer', generator=dict(type='dense_adapters.Uformer', "
                "embed_dim=16, depths=(1, 1, 1, 1, 1), win_size=4, drop_path_rate=0.0))\n")


def only_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from skimage.data import camera

    return camera()[::4, ::4].copy()  # 128x128 grey photo, uint8


@pytest.fixture
def folders(tmp_path, photo):
    """in8/x.png (8-bit grey) and in16/x.png (the same photo, 16-bit)."""
    for name, arr in (("in8", photo), ("in16", photo.astype(np.uint16) * 257)):
        os.makedirs(tmp_path / name)
        Image.fromarray(arr).save(tmp_path / name / "x.png")
    return tmp_path


def test_lost_reads_16_bit_grey_images_like_8_bit_ones(folders, capsys):
    from dense_adapters.cli import lost

    cfg = folders / "vit.py"
    cfg.write_text(TINY_VIT)
    boxes = []
    for name in ("in8", "in16"):
        out = folders / f"out_{name}"
        assert lost.main([str(cfg), "--dataset", "folder", "--data-root", str(folders / name), "--out", str(out),
                          "--k-patches", "10"]) == 0, capsys.readouterr().err
        with open(out / "preds.json") as f:
            boxes.append([p["box"] for p in json.load(f)])
    assert boxes[0] == boxes[1]


@pytest.mark.parametrize("content, message", [
    (b"\x89PNG\r\n\x1a\n not a png", "error: cannot read image {path} ("),
    (b"", "error: {path} is empty (0 bytes): replace or remove the file"),
])
def test_lost_on_a_corrupt_image_is_one_line(folders, capsys, content, message):
    from dense_adapters.cli import lost

    cfg = folders / "vit.py"
    cfg.write_text(TINY_VIT)
    bad = folders / "in8" / "y.png"
    bad.write_bytes(content)
    code = lost.main([str(cfg), "--dataset", "folder", "--data-root", str(folders / "in8"), "--out",
                      str(folders / "o")])
    assert code == 2 and only_error(capsys.readouterr().err).startswith(message.format(path=bad))


class Opaque:  # pickling an instance makes a checkpoint that weights_only loading refuses
    pass


def test_lost_on_wrong_checkpoints_is_one_line_and_its_advice_works(folders, capsys):
    from dense_adapters.cli import lost
    from dense_adapters.nn import RegViT

    cfg = folders / "vit.py"
    cfg.write_text(TINY_VIT)
    vit = dict(embed_dim=32, depth=2, num_heads=2, patch_size=16, img_size=64)
    torch.save(RegViT(**vit, num_register_tokens=4).state_dict(), folders / "regs4.pth")
    good = RegViT(**vit, num_register_tokens=2).state_dict()
    data = (folders / "regs4.pth").read_bytes()
    (folders / "trunc.pth").write_bytes(data[: len(data) // 2])
    torch.save({"state_dict": good, "note": Opaque()}, folders / "pickled.pth")
    args = [str(cfg), "--dataset", "folder", "--data-root", str(folders / "in8"), "--k-patches", "10"]
    cases = {
        "regs4.pth": "error: checkpoint has 4 register tokens but the model has 2: set num_register_tokens=4",
        "trunc.pth": f"error: {folders / 'trunc.pth'} cannot be read as a torch checkpoint (",
        "pickled.pth": f"error: {folders / 'pickled.pth'} needs arbitrary code to unpickle (it holds "
                       f"{__name__}.Opaque), so it was refused: pass trust_pickle=True / --trust-pickle only if",
    }
    for name, start in cases.items():
        code = lost.main([*args, "--checkpoint", str(folders / name), "--out", str(folders / f"o_{name}")])
        assert code == 2 and only_error(capsys.readouterr().err).startswith(start), name
    # the advised --trust-pickle exists and loads the file
    assert lost.main([*args, "--checkpoint", str(folders / "pickled.pth"), "--trust-pickle", "--out",
                      str(folders / "o_trusted")]) == 0, capsys.readouterr().err


def test_lost_on_a_missing_voc_image_is_one_line(tmp_path, capsys):
    from dense_adapters.cli import lost
    from dense_adapters.datasets.samples.voc import make_voc_sample

    root = make_voc_sample(str(tmp_path / "voc"), max_side=96)
    first = sorted(os.listdir(os.path.join(root, "JPEGImages")))[0]
    os.remove(os.path.join(root, "JPEGImages", first))
    code = lost.main(["--arch", "vit_tiny_patch16_224", "--cfg-options", "depth=1", "--dataset", "VOC07",
                      "--data-root", root, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and only_error(err).startswith(
        f"error: image not found: {os.path.join(root, 'JPEGImages', first)}")


@pytest.fixture
def restorer(folders):
    from mmengine.config import Config

    from dense_adapters.registry import MODELS
    from dense_adapters.utils import register_all_modules

    cfg = folders / "uformer.py"
    cfg.write_text(TINY_UFORMER)
    register_all_modules()
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(str(cfg)).model).eval()
    torch.save({"state_dict": model.state_dict()}, folders / "ckpt.pth")
    return str(cfg), str(folders / "ckpt.pth")


def test_denoise_reads_16_bit_grey_images_like_8_bit_ones(folders, restorer):
    from dense_adapters.cli import denoise

    cfg, ckpt = restorer
    outs = []
    for name in ("in8", "in16"):
        out = folders / f"den_{name}"
        assert denoise.main([str(folders / name), str(out), "--config", cfg, "--checkpoint", ckpt,
                             "--device", "cpu", "--no-compare"]) == 0
        outs.append(np.asarray(Image.open(out / "x.png")))
    assert np.array_equal(outs[0], outs[1]) and outs[0].std() > 5  # not a white page


@pytest.mark.parametrize("case", ["corrupt", "missing", "tile", "negative tile", "not a state dict"])
def test_denoise_bad_inputs_are_one_line(folders, restorer, capsys, case):
    from dense_adapters.cli import denoise

    cfg, ckpt = restorer
    src, extra = str(folders / "in8"), []
    if case == "corrupt":
        (folders / "in8" / "y.png").write_bytes(b"GIF89a broken")
        expect = f"error: cannot read image {folders / 'in8' / 'y.png'} ("
    elif case == "missing":
        src = str(folders / "nothing.png")
        expect = f"error: input not found: {src}"
    elif case == "tile":
        extra = ["--tile", "32", "--tile-overlap", "40"]
        expect = "error: --tile-overlap 40 must be smaller than --tile 32"
    elif case == "negative tile":
        extra = ["--tile", "32", "--tile-overlap", "-8"]
        expect = "error: --tile and --tile-overlap must be >= 0, got 32 and -8"
    else:
        torch.save([1, 2, 3], folders / "list.pth")
        ckpt = str(folders / "list.pth")
        expect = f"error: {ckpt} holds no state dict of tensors"
    code = denoise.main([src, str(folders / "o"), "--config", cfg, "--checkpoint", ckpt, "--device", "cpu", *extra])
    assert code == 2 and only_error(capsys.readouterr().err).startswith(expect)


def test_eval_depth_refuses_8_bit_pngs_nan_and_unreadable_predictions(tmp_path, capsys):
    import cv2

    from dense_adapters.cli import eval_depth

    gt = np.full((480, 640), 2000, np.uint16)  # 2 m, in millimetres
    for sub in ("gt", "png8", "nan", "bad"):
        os.makedirs(tmp_path / sub)
    cv2.imwrite(str(tmp_path / "gt" / "s0.png"), gt)
    cv2.imwrite(str(tmp_path / "png8" / "s0.png"), np.full((480, 640), 200, np.uint8))
    pred = np.full((480, 640), 2.0, np.float32)
    pred[10, 10] = np.nan
    np.save(tmp_path / "nan" / "s0.npy", pred)
    (tmp_path / "bad" / "s0.npy").write_bytes(b"\x93NUMPY garbage")
    cases = {
        "png8": f"error: {tmp_path / 'png8' / 's0.png'} is an 8-bit PNG: depth PNGs hold uint16 millimetres",
        "nan": f"error: s0: the prediction {tmp_path / 'nan' / 's0.npy'} has 1 NaN or infinite values",
        "bad": f"error: cannot read {tmp_path / 'bad' / 's0.npy'} (",
    }
    for sub, start in cases.items():
        assert eval_depth.main([str(tmp_path / sub), str(tmp_path / "gt")]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(start), (sub, lines)
    assert eval_depth.main([str(tmp_path / "gt"), str(tmp_path / "gt")]) == 0  # the same maps as 16-bit PNGs: fine
