"""Train a model from a config with mmengine's Runner (mmseg's CLI).

    python tools/train.py configs/ade20k_regvit.py --work-dir work_dirs/x [--amp] [--resume [CKPT]]
    bash tools/dist_train.sh configs/ade20k_regvit.py 8        # torchrun, one process per GPU
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout without install

from dense_adapters.runner_utils import (UserError, adjust_for_device, check_data, default_work_dir, enable_amp,
                                         load_config, run_cli)


def parse_args() -> argparse.Namespace:
    from mmengine.config import DictAction

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="train config file")
    p.add_argument("--work-dir", help="where logs and checkpoints go (default: work_dirs/<config name>)")
    p.add_argument("--resume", nargs="?", const="auto", default=None,
                   help="resume from CKPT, or from the latest checkpoint in the work dir when no CKPT is given")
    p.add_argument("--amp", action="store_true", help="mixed precision (CUDA; fp16 with dynamic loss scaling)")
    p.add_argument("--amp-dtype", default="float16", choices=["float16", "bfloat16"], help="dtype for --amp")
    p.add_argument("--data-root", help="dataset root for every dataloader (overrides the config's data_root)")
    p.add_argument("--cfg-options", nargs="+", action=DictAction,
                   help="override config entries, e.g. train_cfg.max_iters=100 model.backbone.init_cfg=None")
    p.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    p.add_argument("--local_rank", "--local-rank", type=int, default=0)
    args = p.parse_args()
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    return args


def main() -> None:
    args = parse_args()
    from dense_adapters.registry import register_all_modules

    register_all_modules()
    from mmengine.runner import Runner

    cfg = load_config(args.config, args.cfg_options, args.data_root, args.launcher)
    cfg.work_dir = args.work_dir or cfg.get("work_dir") or default_work_dir(args.config)
    if args.amp:
        enable_amp(cfg, args.amp_dtype)
    if args.resume == "auto":
        cfg.resume, cfg.load_from = True, None
    elif args.resume:
        if not osp.isfile(args.resume):
            raise UserError(f"checkpoint to resume from not found: {args.resume}")
        cfg.resume, cfg.load_from = True, args.resume
    adjust_for_device(cfg)
    check_data(cfg, ("train_dataloader", "val_dataloader") if cfg.get("val_cfg") else ("train_dataloader",))
    runner = Runner.from_cfg(cfg)
    runner.train()
    print(f"done: logs and checkpoints in {osp.abspath(cfg.work_dir)}")


if __name__ == "__main__":
    run_cli(main)
