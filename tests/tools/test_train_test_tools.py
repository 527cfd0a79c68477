"""tools/train.py and tools/test.py with the real Runner on the ADE sample; configs; clear errors."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_CONFIG = """
_base_ = ['{root}/configs/ade20k_regvit.py']
model = dict(
    data_preprocessor=dict(size=(56, 56)),
    backbone=dict(preset=None, img_size=56, patch_size=14, embed_dim=32, depth=2, num_heads=2,
                  num_register_tokens=2, init_cfg=None),
    decode_head=dict(in_channels=32),
    test_cfg=dict(mode='whole'))
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False, dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='Resize', scale=(56, 56), keep_ratio=False), dict(type='PackSegInputs')]))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'), dict(type='Resize', scale=(56, 56), keep_ratio=False),
    dict(type='LoadAnnotations', reduce_zero_label=True), dict(type='PackSegInputs')]))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=0.05))
param_scheduler = []
train_cfg = dict(max_iters=30, val_interval=30)
default_hooks = dict(checkpoint=dict(interval=30), logger=dict(interval=1))
"""


def run_tool(*args, check=True):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    r = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if check and r.returncode != 0:
        raise AssertionError(f"{args} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


@pytest.fixture(scope="module")
def trained(ade_sample, tmp_path_factory):
    work = tmp_path_factory.mktemp("train")
    cfg = tmp_path_factory.mktemp("cfg") / "tiny.py"  # not in the work dir, where the runner dumps its config
    cfg.write_text(TINY_CONFIG.format(root=ROOT))
    run_tool("tools/train.py", str(cfg), "--work-dir", str(work), "--data-root", ade_sample)
    return work, cfg


def test_train_overfits_and_writes_checkpoint(trained):
    work, _ = trained
    assert osp.isfile(work / "iter_30.pth")
    logs = glob.glob(str(work / "*" / "vis_data" / "scalars.json"))
    losses = [json.loads(line)["loss"] for line in open(logs[0]) if '"loss"' in line]
    assert len(losses) == 30
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5  # the 8 training images are being fitted
    val = [json.loads(line) for line in open(logs[0]) if '"mIoU"' in line]
    assert val and 0 <= val[-1]["mIoU"] <= 100


def test_test_tool_loads_checkpoint_and_prints_miou(trained, ade_sample, tmp_path):
    work, cfg = trained
    r = run_tool("tools/test.py", str(cfg), str(work / "iter_30.pth"), "--work-dir", str(tmp_path),
                 "--data-root", ade_sample, "--show-dir", str(tmp_path / "vis"), "--out", str(tmp_path / "pred"))
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("metrics:")][0]
    assert "mIoU=" in line and "aAcc=" in line and "mAcc=" in line
    assert len(glob.glob(str(tmp_path / "vis" / "**" / "*.png"), recursive=True)) == 4
    assert len(glob.glob(str(tmp_path / "pred" / "*.png"))) == 4


def test_missing_dataset_is_one_clear_line(tmp_path):
    r = run_tool("tools/train.py", "configs/ade20k_regvit.py", "--work-dir", str(tmp_path),
                 "--cfg-options", "model.backbone.init_cfg=None", check=False)
    assert r.returncode == 2
    err = r.stderr.strip().splitlines()
    assert err[-1].startswith("error: dataset not found: train_dataloader looks for 'data/ade/ADEChallengeData2016'")
    assert "--data-root" in err[-1] and "Traceback" not in r.stderr


def test_env_report():
    r = run_tool("-m", "dense_adapters.env")
    for key in ("torch", "timm", "mmengine", "mmseg", "mmcv compiled ops", "cuda", "bf16"):
        assert any(line.startswith(key) for line in r.stdout.splitlines()), key


def test_convert_checkpoint_tool(tmp_path):
    import timm
    import torch

    t = timm.create_model("vit_small_patch14_reg4_dinov2", pretrained=False, img_size=518)
    torch.save(t.state_dict(), tmp_path / "timm.pth")
    r = run_tool("tools/convert_checkpoint.py", str(tmp_path / "timm.pth"), str(tmp_path / "out.pth"),
                 "--preset", "dinov2_vits14_reg4")
    assert "loaded a timm checkpoint" in r.stdout and "missing (0)" in r.stdout
    sd = torch.load(tmp_path / "out.pth", weights_only=True)
    assert sd["reg_token"].shape == (1, 4, 384) and sd["pos_embed"].shape == (1, 37 * 37, 384)
    r = run_tool("tools/convert_checkpoint.py", str(tmp_path / "timm.pth"), str(tmp_path / "bad.pth"),
                 "--preset", "dinov2_vits14", check=False)
    assert r.returncode == 2 and "set num_register_tokens=4" in r.stderr


def test_amp_on_the_cpu_is_bf16_autocast_and_compile_works(ade_sample, tmp_path):
    (tmp_path / "cfg").mkdir()
    cfg = tmp_path / "cfg" / "tiny.py"
    cfg.write_text(TINY_CONFIG.format(root=ROOT).replace("max_iters=30, val_interval=30", "max_iters=3, val_interval=3")
                   .replace("interval=30", "interval=3"))
    run_tool("tools/train.py", str(cfg), "--work-dir", str(tmp_path / "w"), "--data-root", ade_sample, "--amp",
             "--compile")
    assert osp.isfile(tmp_path / "w" / "iter_3.pth")
    dumped = open(glob.glob(str(tmp_path / "w" / "*" / "vis_data" / "config.py"))[0]).read()
    assert "dense_adapters.AutocastOptimWrapper" in dumped
    logs = glob.glob(str(tmp_path / "w" / "*" / "vis_data" / "scalars.json"))
    losses = [json.loads(line)["loss"] for line in open(logs[0]) if '"loss"' in line]
    assert len(losses) == 3 and all(v == v and v < 100 for v in losses)
    bad = run_tool("tools/train.py", str(cfg), "--work-dir", str(tmp_path / "x"), "--data-root", ade_sample, "--amp",
                   "--amp-dtype", "float16", check=False)
    assert bad.returncode == 2 and "use --amp-dtype bfloat16 (fp16 needs a CUDA GPU)" in bad.stderr.splitlines()[-1]


def test_autocast_optim_wrapper_runs_forward_in_bf16():
    import torch
    from mmengine.optim import build_optim_wrapper

    from dense_adapters.utils import register_all_modules

    register_all_modules()
    model = torch.nn.Linear(4, 4)
    w = build_optim_wrapper(model, dict(type="dense_adapters.AutocastOptimWrapper",
                                        optimizer=dict(type="AdamW", lr=1e-3)))
    with w.optim_context(model):
        y = model(torch.randn(2, 4))
    assert y.dtype == torch.bfloat16
    w.update_params(y.float().pow(2).mean())
    assert model.weight.dtype == torch.float32 and model(torch.randn(2, 4)).dtype == torch.float32
