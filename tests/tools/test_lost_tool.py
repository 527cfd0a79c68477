"""tools/lost.py end to end on the tiny VOC sample with a tiny random RegViT (registers on)."""
import json
import os
import subprocess
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = ("backbone = dict(type='dense_adapters.RegViT', embed_dim=32, depth=2, num_heads=2, patch_size=16,\n"
        "                num_register_tokens=4, img_size=64)\n")


@pytest.fixture(scope="module")
def tool():
    from dense_adapters.cli import lost

    return lost


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory) -> str:
    from dense_adapters.datasets.samples.voc import make_voc_sample

    return make_voc_sample(str(tmp_path_factory.mktemp("voc")), max_side=160)


@pytest.fixture(scope="module")
def tiny_cfg(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("cfg") / "tiny_regvit.py"
    path.write_text(TINY)
    return str(path)


def _read_preds(out: str) -> list:
    with open(os.path.join(out, "preds.json")) as f:
        return json.load(f)


def test_voc_sample_end_to_end(tool, voc_root, tiny_cfg, tmp_path, capsys):
    out = str(tmp_path / "run")
    rc = tool.main([tiny_cfg, "--dataset", "VOC07", "--data-root", voc_root, "--set", "trainval",
                    "--out", out, "--visualize", "2", "--batch-size", "3", "--k-patches", "20"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "4 registers" in printed and "CorLoc:" in printed
    preds = _read_preds(out)
    with open(os.path.join(out, "results.json")) as f:
        res = json.load(f)
    assert len(preds) == 6 and res["num_evaluated"] == 6 and res["num_prefix_tokens"] == 5
    assert res["num_correct"] == sum(p["correct"] for p in preds)
    assert res["corloc"] == pytest.approx(100 * res["num_correct"] / 6)
    assert f"CorLoc: {res['corloc']:.2f} ({res['num_correct']}/6)" in printed
    from dense_adapters.discovery import box_iou

    for p in preds:
        H, W = p["image_size"]
        x0, y0, x1, y1 = p["box"]
        assert 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H
        assert p["grid"] == [-(-H // 16), -(-W // 16)]
        iou = box_iou(torch.tensor([p["box"]]), torch.tensor(p["gt_boxes"])).max().item()
        assert p["iou"] == pytest.approx(iou, abs=1e-4) and p["correct"] == (iou >= 0.5)
    assert sorted(os.listdir(os.path.join(out, "vis"))) == sorted(f"{p['name']}.png" for p in preds[:2])

    # batching images of equal size changes nothing
    out1 = str(tmp_path / "run_bs1")
    assert tool.main([tiny_cfg, "--dataset", "VOC07", "--data-root", voc_root, "--out", out1,
                      "--k-patches", "20"]) == 0
    assert [p["box"] for p in _read_preds(out1)] == [p["box"] for p in preds]


def test_arch_and_checkpoint_on_a_folder(tool, voc_root, tmp_path, capsys):
    """--arch + --checkpoint loads the weights (the tool seeds torch with 0; these weights come from seed 123) and
    gives the boxes of running LOST by hand on the bottom/right zero-padded, normalised image."""
    from dense_adapters.datasets.discovery import FolderImages, normalize_image, pad_to, padded_size
    from dense_adapters.discovery import boxes_to_image, extract_features, lost
    from dense_adapters.nn import create_regvit

    torch.manual_seed(123)
    ref = create_regvit("vit_tiny_patch16_224", num_register_tokens=2, depth=3).eval()
    ckpt = tmp_path / "vit.pth"
    torch.save(ref.state_dict(), ckpt)
    folder = os.path.join(voc_root, "JPEGImages")
    out = str(tmp_path / "folder")
    rc = tool.main(["--arch", "vit_tiny_patch16_224", "--arch-options", "num_register_tokens=2", "depth=3",
                    "--checkpoint", str(ckpt), "--dataset", "folder",
                    "--data-root", folder, "--out", out, "--max-images", "2", "--which-features", "v"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "missing (0)" in printed and "2 registers" in printed and "no CorLoc" in printed
    preds = _read_preds(out)
    assert len(preds) == 2 and all("gt_boxes" not in p for p in preds)
    with open(os.path.join(out, "results.json")) as f:
        assert json.load(f)["corloc"] is None
    ds = FolderImages(folder)
    for i, p in enumerate(preds):
        img = ds.load(i)
        x = pad_to(normalize_image(img), padded_size(img.shape[:2], 16))[None]
        feats, hw = extract_features(ref, x, "v")
        box = boxes_to_image(lost(feats, hw).box, 16, img.shape[:2])[0]
        assert p["name"] == ds[i].name and p["box"] == pytest.approx(box.tolist())


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, os.path.join(ROOT, "tools", "lost.py"), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


def test_missing_data_root_and_split_file(tool, voc_root, tiny_cfg, tmp_path, capsys):
    r = _cli(tiny_cfg, "--dataset", "VOC07", "--data-root", str(tmp_path / "missing"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "VOC data root" in lines[0] and "does not exist" in lines[0]

    rc = tool.main([tiny_cfg, "--dataset", "VOC07", "--data-root", voc_root, "--set", "test",
                    "--out", str(tmp_path / "o")])
    assert rc == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "test.txt" in lines[0] and "not found" in lines[0]


def test_config_xor_arch(tool, tiny_cfg, tmp_path):
    with pytest.raises(SystemExit):
        tool.parse_args(["--data-root", str(tmp_path), "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        tool.parse_args([tiny_cfg, "--arch", "vit_tiny_patch16_224", "--data-root", str(tmp_path), "--out", "o"])


def test_mmengine_model_config_with_init_cfg(tool, tmp_path):
    """A full model config: model.backbone is used and its init_cfg checkpoint is loaded."""
    from dense_adapters.nn import RegViT

    torch.manual_seed(7)
    ref = RegViT(embed_dim=32, depth=2, num_heads=2, patch_size=16, num_register_tokens=4, img_size=64)
    torch.save(ref.state_dict(), tmp_path / "w.pth")
    cfg = tmp_path / "seg.py"
    cfg.write_text("model = dict(type='EncoderDecoder', backbone=dict(\n"
                   "    type='dense_adapters.RegViT', embed_dim=32, depth=2, num_heads=2, patch_size=16,\n"
                   "    num_register_tokens=4, img_size=64,\n"
                   f"    init_cfg=dict(type='Pretrained', checkpoint='{tmp_path / 'w.pth'}', source='native')))\n")
    from dense_adapters.cli.backbone import backbone_from_args

    args = tool.parse_args([str(cfg), "--data-root", str(tmp_path), "--out", str(tmp_path / "o")])
    vit = backbone_from_args(args)
    assert vit.num_prefix_tokens == 5
    for k, v in ref.state_dict().items():
        torch.testing.assert_close(vit.state_dict()[k], v)
