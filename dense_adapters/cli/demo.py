"""The main job on the embedded default: train and evaluate ADE20K segmentation on the sample, on the CPU.

    python tools/demo.py [--config configs/ade20k_regvit.py] [--iters 60] [--work-dir work_dirs/demo]

Makes the ADE20K-format sample from scikit-image's photos (data/samples/ade), trains the config for a few
iterations from random weights (no download: pretrained weights are not available offline), evaluates mIoU with
the test tool and saves coloured predictions. Everything it writes is listed at the end. Default paths are in the
checkout (the current folder when it holds configs/).
"""
from __future__ import annotations

import argparse
import glob
import os
import os.path as osp
import subprocess
import sys
from typing import Optional, Sequence

from .core import repo_root, run_cli

DEMO_CONFIG = """# Written by the demo tool: {base} shortened for a CPU run on the sample.
_base_ = ['{base}']
model = dict(
    backbone=dict(init_cfg=None),  # random weights: nothing is downloaded
    data_preprocessor=dict(size=({crop}, {crop})))
crop = ({crop}, {crop})
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False, dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(768, 256), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]))
val_dataloader = dict(num_workers=0, persistent_workers=False)
test_dataloader = dict(num_workers=0, persistent_workers=False)
optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=1.0, begin=0, end={iters}, by_epoch=False)]
train_cfg = dict(max_iters={iters}, val_interval={iters})
default_hooks = dict(checkpoint=dict(interval={iters}), logger=dict(interval=10))
randomness = dict(seed=0)
"""


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    root = repo_root()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=osp.join(root, "configs", "ade20k_regvit.py"))
    p.add_argument("--iters", type=int, default=60, help="training iterations")
    p.add_argument("--crop", type=int, default=224, help="training crop size (the config uses 512)")
    p.add_argument("--work-dir", default=osp.join(root, "work_dirs", "demo"))
    p.add_argument("--data", default=osp.join(root, "data", "samples", "ade"))
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    from ..datasets.samples.ade import make_ade_sample

    data_root = osp.join(args.data, "ADEChallengeData2016")
    if not osp.isdir(osp.join(data_root, "images")):
        make_ade_sample(args.data)
    print(f"sample data: {data_root}")
    # the demo's overrides, as a config of its own that users can read and reuse
    os.makedirs(args.work_dir, exist_ok=True)
    demo_cfg = osp.join(args.work_dir, "demo_config.py")
    with open(demo_cfg, "w") as f:
        f.write(DEMO_CONFIG.format(base=osp.abspath(args.config), crop=args.crop, iters=args.iters))
    common = ["--data-root", data_root, "--work-dir", args.work_dir]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    try:
        subprocess.run([sys.executable, "-m", "dense_adapters.cli.train", demo_cfg, *common], check=True, env=env)
        ckpt = osp.join(args.work_dir, f"iter_{args.iters}.pth")
        vis_dir = osp.join(args.work_dir, "vis")
        subprocess.run([sys.executable, "-m", "dense_adapters.cli.test", demo_cfg, ckpt, *common, "--show-dir",
                        vis_dir], check=True, env=env)
    except subprocess.CalledProcessError as e:  # the tool printed its own error
        return e.returncode
    vis = sorted(glob.glob(osp.join(vis_dir, "**", "*.png"), recursive=True))
    print("\nwritten:")
    print(f"  config:                {demo_cfg}")
    print(f"  checkpoint:            {ckpt}")
    print(f"  logs and metrics:      {args.work_dir}/<timestamp>/")
    if vis:
        print(f"  coloured predictions:  {osp.dirname(vis[0])}/ ({len(vis)} images)")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    return run_cli(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
