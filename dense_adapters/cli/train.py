"""Train a model from a config with mmengine's Runner (mmseg's CLI).

    python tools/train.py configs/ade20k_regvit.py --work-dir work_dirs/x [--amp] [--resume [CKPT]]
    bash tools/dist_train.sh configs/ade20k_regvit.py 8        # torchrun, one process per GPU (gloo on CPUs)
    bash tools/slurm_train.sh PARTITION JOB configs/ade20k_regvit.py 16

Every run gets the safety nets of dense_adapters.cli.runner.add_reliability: checkpoints written atomically and
checked against the model, weights_only loading (--trust-pickle to override), data checks, a stop at the first
non-finite loss, and exact resume (docs/reliability.md).
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
from typing import Optional, Sequence

from ..engine.checkpoint_io import checkpoint_meta
from ..errors import UserError
from ..fileio import lock_work_dir
from .core import run_cli
from .runner import (add_reliability, add_runner_args, adjust_for_device, build_runner, check_data, default_work_dir,
                     enable_amp, export_local_rank, find_resume_checkpoint, load_config, probe_checkpoints)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="train config file")
    p.add_argument("--work-dir", help="where logs and checkpoints go (default: work_dirs/<config name>)")
    p.add_argument("--resume", nargs="?", const="auto", default=None,
                   help="resume from CKPT, or from the latest complete checkpoint in the work dir when no CKPT is given")
    p.add_argument("--amp", action="store_true",
                   help="mixed precision: CUDA fp16 with dynamic loss scaling (or --amp-dtype bfloat16); "
                        "bf16 autocast on the CPU")
    p.add_argument("--amp-dtype", choices=["float16", "bfloat16"], help="dtype for --amp (default: float16 on "
                                                                         "CUDA, bfloat16 on the CPU)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the backbone in place (mmengine's cfg.compile also compiles the optimizer "
                        "step, which fails with AdamW on torch 2.14)")
    add_runner_args(p)
    args = p.parse_args(argv)
    export_local_rank(args)
    return args


def run(args: argparse.Namespace) -> None:
    from ..datasets.checks import check_datasets
    from ..utils import register_all_modules

    register_all_modules()
    cfg = load_config(args.config, args.cfg_options, args.data_root, args.launcher)
    cfg.work_dir = args.work_dir or cfg.get("work_dir") or default_work_dir(args.config)
    if args.amp:
        enable_amp(cfg, args.amp_dtype)
    mode = "finetune" if cfg.get("load_from") else "train"
    if args.resume == "auto":
        ckpt = find_resume_checkpoint(cfg.work_dir)
        if ckpt is None:
            print(f"no complete checkpoint in {cfg.work_dir}: starting from the beginning", file=sys.stderr)
        else:
            cfg.resume, cfg.load_from, mode = True, ckpt, "resume"
    elif args.resume:
        cfg.resume, cfg.load_from, mode = True, args.resume, "resume"
    probe_checkpoints(cfg)  # a missing, empty or truncated checkpoint: one line now, not after the build
    if mode == "resume" and (cfg.get("randomness") or {}).get("seed") is None:
        # mmengine restores the checkpoint's seed only after the dataloaders are built: give it to them
        from ..nn.convert import fetch_checkpoint

        seed = checkpoint_meta(fetch_checkpoint(cfg.load_from)).get("seed")
        if seed is not None:
            cfg.randomness = dict(cfg.get("randomness") or {}, seed=int(seed))
    add_reliability(cfg, mode, trust_pickle=args.trust_pickle)
    adjust_for_device(cfg)
    loaders = ("train_dataloader", "val_dataloader") if cfg.get("val_cfg") else ("train_dataloader",)
    check_data(cfg, loaders)
    check_datasets(cfg, loaders)  # before the runner: an empty split would make InfiniteSampler wait forever
    # one run per work dir (a second one would mix its checkpoints in); stale temporaries of a killed save go
    with lock_work_dir(cfg.work_dir, log=lambda m: print(f"note: {m}", file=sys.stderr)):
        runner = build_runner(cfg, trust_pickle=args.trust_pickle)
        if args.compile:
            model = getattr(runner.model, "module", runner.model)
            if not hasattr(model, "backbone"):
                raise UserError("--compile compiles model.backbone, and this model has none")
            model.backbone.compile()  # in place: state-dict keys and checkpoints stay the same
        runner.train()
    print(f"done: logs and checkpoints in {osp.abspath(cfg.work_dir)}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    return run_cli(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
