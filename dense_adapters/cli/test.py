"""Evaluate a checkpoint on a config's test set with mmengine's Runner (mmseg's CLI).

    python tools/test.py configs/ade20k_regvit.py work_dirs/ade20k_regvit/iter_40000.pth [--show-dir vis]
    python tools/test.py configs/regvit-s14-reg4_knn-20nn_in1k-224x224.py      # no checkpoint: the config's weights
    python tools/test.py configs/uformer-t_1xb32-750k_sidd-128x128.py Uformer_T.pth  # the Uformer authors' weights

Segmentation prints aAcc, mIoU and mAcc (mmseg's IoUMetric); other tasks print their configured metrics.
"""
from __future__ import annotations

import argparse
from typing import Optional, Sequence

from ..errors import UserError
from .core import run_cli
from .runner import (add_reliability, add_runner_args, adjust_for_device, build_runner, check_data, default_work_dir,
                     export_local_rank, load_config, probe_checkpoints)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="test config file")
    p.add_argument("checkpoint", nargs="?",
                   help="checkpoint file; without one the model gets the weights of its config (init_cfg), e.g. the "
                        "pretrained backbone of a k-NN evaluation")
    p.add_argument("--work-dir", help="where logs and metrics go (default: work_dirs/<config name>)")
    p.add_argument("--show-dir", help="save coloured predictions (blended with the image) in this folder")
    p.add_argument("--out", help="save raw predictions (label maps) as PNG files in this folder")
    p.add_argument("--tta", action="store_true", help="test-time augmentation from the config's tta_pipeline")
    add_runner_args(p)
    args = p.parse_args(argv)
    export_local_rank(args)
    return args


def run(args: argparse.Namespace) -> dict:
    """Evaluate; returns the metrics."""
    from ..datasets.checks import check_datasets
    from ..utils import register_all_modules

    register_all_modules()
    cfg = load_config(args.config, args.cfg_options, args.data_root, args.launcher)
    cfg.work_dir = args.work_dir or cfg.get("work_dir") or default_work_dir(args.config)
    release = args.checkpoint is not None and _uformer_release(cfg, args.checkpoint, args.trust_pickle)
    if release:  # the authors' Uformer weights: converted into the generator (init_cfg), not a Runner checkpoint
        cfg.model.generator.init_cfg = dict(type="Pretrained", checkpoint=args.checkpoint, strict=True,
                                            trust_pickle=args.trust_pickle)
    elif args.checkpoint is not None:
        cfg.load_from = args.checkpoint
        # the checkpoint carries the weights: no pretrained download or conversion at test time
        if isinstance(cfg.model.get("backbone"), dict):
            cfg.model.backbone.init_cfg = None
    if args.show_dir:
        vis = cfg.default_hooks.get("visualization")
        if not vis:
            raise UserError("--show-dir needs a visualization hook in default_hooks of the config")
        vis.update(draw=True, interval=1)
        cfg.visualizer["save_dir"] = args.show_dir
    if args.out:
        cfg.test_evaluator = [cfg.test_evaluator] if isinstance(cfg.test_evaluator, dict) else cfg.test_evaluator
        for ev in cfg.test_evaluator:
            if ev.get("type") == "IoUMetric":
                ev.update(output_dir=args.out, keep_results=True)
            elif ev.get("type") == "dense_adapters.DepthEvalMetric":  # depth maps as uint16 PNGs in millimetres
                ev.update(output_dir=args.out)
    if args.tta:
        if "tta_model" not in cfg or "tta_pipeline" not in cfg:
            raise UserError("--tta needs tta_model and tta_pipeline in the config")
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    probe_checkpoints(cfg)  # a missing, empty or truncated checkpoint: one line before the build
    add_reliability(cfg, "test", trust_pickle=args.trust_pickle)
    adjust_for_device(cfg)
    check_data(cfg, ("test_dataloader",))
    check_datasets(cfg, ("test_dataloader",))
    runner = build_runner(cfg, trust_pickle=args.trust_pickle)
    if args.checkpoint is None or release:  # Runner.test() loads checkpoints only: give the model its init_cfg
        if hasattr(runner, "init_model_weights"):
            runner.init_model_weights()  # every init_cfg Pretrained through the safe reader
        else:
            getattr(runner.model, "module", runner.model).init_weights()
    metrics = runner.test()
    print("metrics: " + ", ".join(f"{k}={_fmt(v)}" for k, v in metrics.items()))
    return metrics


def _uformer_release(cfg, checkpoint: str, trust_pickle: bool) -> bool:
    """A config whose generator is a ``dense_adapters.Uformer`` given the authors' Uformer weights."""
    from ..models.restorers.uformer import is_uformer_release

    gen = cfg.model.get("generator")
    return (isinstance(gen, dict) and gen.get("type") in ("dense_adapters.Uformer", "Uformer")
            and is_uformer_release(checkpoint, trust_pickle))


def _fmt(v) -> str:
    try:
        return f"{float(v):.4g}"
    except (TypeError, ValueError):
        return str(v)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    return run_cli(lambda: run(args))


if __name__ == "__main__":
    import sys

    sys.exit(main())
