"""Helpers of tests/reliability: tiny ADE20K-style training configs and running the tools (subprocess or in-process)."""
from __future__ import annotations

import json
import os
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASE = osp.join(ROOT, "configs", "ade20k_regvit.py")

CONFIG = """_base_ = [{base!r}]
custom_imports = dict(imports=['dense_adapters.models', 'dense_adapters.engine', 'dense_adapters.datasets'{extra_imports}],
                      allow_failed_imports=False)
randomness = dict(seed=0, deterministic={deterministic})
crop = (64, 64)
model = dict(
    data_preprocessor=dict(size=crop),
    backbone=dict(embed_dim={dim}, depth=2, num_heads=2, patch_size=8, img_size=64, num_register_tokens={regs},
                  frozen=False, drop_path_rate={drop_path}, init_cfg=None),
    decode_head=dict(in_channels={dim}, dropout_ratio={dropout}, norm_cfg={norm_cfg}),
    test_cfg=dict(mode='whole'))
train_pipeline = {train_pipeline}
val_pipeline = [
    dict(type='LoadImageFromFile'), dict(type='Resize', scale=crop, keep_ratio=False),
    dict(type='LoadAnnotations', reduce_zero_label=True), dict(type='PackSegInputs')]
train_dataloader = dict(batch_size={batch}, num_workers={workers}, persistent_workers={persistent},
                        dataset=dict(data_root={data_root!r}, pipeline=train_pipeline))
val_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False,
                      dataset=dict(data_root={data_root!r}, pipeline=val_pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr={lr}))
param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=1.0, begin=0, end={iters}, by_epoch=False)]
train_cfg = dict(max_iters={iters}, val_interval={val_interval})
default_hooks = dict(checkpoint=dict(interval={ckpt_interval}, max_keep_ckpts=-1), logger=dict(interval=1))
{extra}
"""

AUG_PIPELINE = """[
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(128, 64), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')]"""

FIXED_PIPELINE = """[
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='Resize', scale=crop, keep_ratio=False),
    dict(type='PackSegInputs')]"""


WORKERS = dict(workers=2, persistent=True)  # as the shipped configs: augmentation runs in worker processes


def write_config(path: str, data_root: str, **kw) -> str:
    """A tiny RegViT (dim 32, depth 2) linear-probe config on ``data_root``; keyword arguments fill CONFIG."""
    opts = dict(base=BASE, data_root=data_root, regs=2, dim=32, deterministic=True, drop_path=0.1, dropout=0.1, norm_cfg="dict(type='BN')",
                train_pipeline=AUG_PIPELINE, batch=2, lr=1e-3, iters=6, val_interval=100, ckpt_interval=2,
                extra="", extra_imports="", workers=0, persistent=False)
    opts.update(kw)
    with open(path, "w") as f:
        f.write(CONFIG.format(**opts))
    return path


def tool_env() -> dict:
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([ROOT, osp.dirname(osp.abspath(__file__)), env.get("PYTHONPATH", "")])
    return env


def run_tool(tool: str, *args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    """Run tools/<tool> in a subprocess; returns the completed process (stdout/stderr as text)."""
    cmd = [sys.executable, osp.join(ROOT, "tools", tool), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=tool_env(), timeout=timeout, cwd=ROOT)


def logged_losses(work_dir: str) -> dict[int, float]:
    """iteration -> logged 'loss' from every run's vis_data/scalars.json in ``work_dir``."""
    out = {}
    for run in sorted(os.listdir(work_dir)):
        path = osp.join(work_dir, run, "vis_data", "scalars.json")
        if osp.isfile(path):
            with open(path) as f:
                for line in f:
                    rec = json.loads(line)
                    if "loss" in rec and "step" in rec:
                        out[int(rec["step"])] = float(rec["loss"])
    return out


def call_tool(tool: str, *args: str, capsys=None, stdout: bool = False) -> tuple[int, str]:
    """Run the tool's main (``dense_adapters.cli.<tool>``, e.g. 'train.py' -> cli.train) in this process (no
    interpreter start-up); returns (exit code, stderr), or (exit code, stdout) with ``stdout=True``."""
    import importlib

    mod = importlib.import_module(f"dense_adapters.cli.{tool[:-3]}")
    try:
        code = mod.main(list(args))
    except SystemExit as e:
        code = int(e.code or 0)
    if capsys is None:
        return code, ""
    captured = capsys.readouterr()
    return code, captured.out if stdout else captured.err


def error_line(stderr: str) -> str:
    """The 'error: ...' line a tool printed (the tools print exactly one)."""
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, stderr[-3000:]
    return lines[0]


def copy_sample(src: str, dst: str) -> str:
    """A private copy of the ADE sample (tests corrupt files in it)."""
    import shutil

    shutil.copytree(src, dst)
    return dst
