"""The main job on the embedded default: train and evaluate ADE20K segmentation on the sample, on the CPU.

    python tools/demo.py [--config configs/ade20k_regvit.py] [--iters 60] [--work-dir work_dirs/demo]
    dense-adapters-demo [--data DIR] [--work-dir DIR] [--iters N] [--cfg-options KEY=VALUE ...]   # installed

Makes the ADE20K-format sample from scikit-image's photos, trains the config (default
dense_adapters::ade20k_regvit.py) for a few iterations from random weights (no download: pretrained weights are not
available offline), evaluates mIoU with the test tool and saves coloured predictions. Everything it writes is listed
at the end. From a clone the sample goes to data/samples/ade and the outputs to work_dirs/demo of the checkout; from
an installed package the sample goes to the cache folder ($DENSE_ADAPTERS_CACHE, else ~/.cache/dense_adapters) and
the outputs to work_dirs/demo of the current folder.
"""
from __future__ import annotations

import argparse
import glob
import os
import os.path as osp
import subprocess
import sys
from typing import Optional, Sequence

from .configs import PREFIX, checkout_root, resolve_config
from .core import cache_dir, run_cli

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


def default_paths() -> tuple[str, str]:
    """(sample folder, work dir): the checkout's data/ and work_dirs/, or the cache and the current folder."""
    root = checkout_root()
    if root is not None:
        return osp.join(root, "data", "samples", "ade"), osp.join(root, "work_dirs", "demo")
    return osp.join(cache_dir(), "samples", "ade"), osp.join(os.getcwd(), "work_dirs", "demo")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    data, work_dir = default_paths()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=PREFIX + "ade20k_regvit.py", help="a config file or dense_adapters::NAME.py")
    p.add_argument("--iters", type=int, default=60, help="training iterations")
    p.add_argument("--crop", type=int, default=224, help="training crop size (the config uses 512)")
    p.add_argument("--work-dir", default=work_dir, help=f"outputs (default {work_dir})")
    p.add_argument("--data", default=data, help=f"the sample's folder, made if missing (default {data})")
    p.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE",
                   help="more overrides of the demo config, passed to training and testing")
    args = p.parse_args(argv)
    if args.iters < 1 or args.crop < 14:
        p.error("--iters must be >= 1 and --crop >= 14")
    return args


def run(args: argparse.Namespace) -> int:
    from ..datasets.samples.ade import make_ade_sample

    # a packaged name stays one in the demo config (portable); a file is written as its absolute path
    base = args.config if args.config.startswith(PREFIX) else osp.abspath(args.config)
    resolve_config(args.config)  # fail before making data when the config does not exist
    data_root = osp.join(args.data, "ADEChallengeData2016")
    if not osp.isdir(osp.join(data_root, "images")):
        make_ade_sample(args.data)
    print(f"sample data: {data_root}")
    # the demo's overrides, as a config of its own that users can read and reuse
    os.makedirs(args.work_dir, exist_ok=True)
    demo_cfg = osp.join(args.work_dir, "demo_config.py")
    with open(demo_cfg, "w") as f:
        f.write(DEMO_CONFIG.format(base=base, crop=args.crop, iters=args.iters))
    common = ["--data-root", data_root, "--work-dir", args.work_dir]
    if args.cfg_options:
        common += ["--cfg-options", *args.cfg_options]
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
