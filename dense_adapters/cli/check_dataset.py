"""Validate a config's dataset before a long training: counts, image sizes, label ranges, unreadable files.

    python tools/check_dataset.py configs/ade20k_regvit.py --split train [--data-root DIR] [--limit N]

Every sample is loaded with the config's loading transforms (as training does, through CheckedLoading) and both
files are fully decoded with PIL (which also catches truncated files that OpenCV decodes with only a warning).
Prints a summary and every problem (one line per file); exits 1 when there are problems, 2 on unusable input.
"""
from __future__ import annotations

import argparse
from collections import Counter
from typing import Optional, Sequence

from ..errors import UserError
from .core import add_cfg_options, run_cli
from .runner import check_data, load_config

SPLITS = {"train": "train_dataloader", "val": "val_dataloader", "test": "test_dataloader"}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("--split", choices=sorted(SPLITS), default="train")
    p.add_argument("--data-root", help="dataset root (overrides the config's data_root)")
    p.add_argument("--limit", type=int, default=0, help="check only the first N samples (0: all)")
    p.add_argument("--max-problems", type=int, default=50, help="problems printed at most (all are counted)")
    add_cfg_options(p)
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    """Check the split; returns the exit code (1 when there are problems)."""
    from mmengine.registry import DefaultScope
    from mmseg.registry import TRANSFORMS

    from ..datasets.checks import (DataError, build_dataset, describe_source, image_file_problem, loading_only,
                                   model_label_space)
    from ..utils import register_all_modules

    register_all_modules()
    cfg = load_config(args.config, args.cfg_options, args.data_root, "none")
    loader = SPLITS[args.split]
    if not cfg.get(loader) or "dataset" not in cfg[loader]:
        raise UserError(f"{args.config} has no {loader}: choose another --split")
    check_data(cfg, (loader,))
    ds = build_dataset(cfg, loader)
    n = len(ds) if not args.limit else min(args.limit, len(ds))
    num_classes, ignore = model_label_space(cfg)
    loading_cfg = loading_only(list(cfg[loader]["dataset"].get("pipeline") or []), num_classes, ignore)
    with DefaultScope.overwrite_default_scope(cfg.get("default_scope", "mmseg")):
        loading = TRANSFORMS.build(loading_cfg) if loading_cfg else None
    print(f"{loader}: {len(ds)} samples in {describe_source(ds)}" + (f" (checking {n})" if n < len(ds) else ""))
    problems, sizes, classes, pixels, ignored = [], [], Counter(), 0, 0
    for i in range(n):
        info = ds.get_data_info(i)
        files = [info.get("img_path"), info.get("seg_map_path")]
        bad = [f"{f}: {why}" for f in files if f for why in [image_file_problem(f)] if why]
        if bad:
            problems.extend(bad)
            continue
        if loading is None:
            continue
        try:
            res = loading(dict(info))
        except DataError as e:
            problems.append(str(e))
            continue
        img, gt = res.get("img"), res.get("gt_seg_map")
        if img is not None:
            sizes.append(img.shape[:2])
        if gt is not None:
            valid = gt != ignore
            classes.update(int(c) for c in set(gt[valid].ravel().tolist()))
            pixels += gt.size
            ignored += int((~valid).sum())
        if (i + 1) % 500 == 0:
            print(f"  {i + 1}/{n} checked, {len(problems)} problems", flush=True)
    if sizes:
        hs, ws = [s[0] for s in sizes], [s[1] for s in sizes]
        print(f"image sizes (WxH): min {min(ws)}x{min(hs)}, max {max(ws)}x{max(hs)}")
    if pixels:
        ncls = f" of {num_classes}" if num_classes else ""
        print(f"labels: {len(classes)}{ncls} classes present ({_short(sorted(classes))}); "
              f"ignored pixels {100.0 * ignored / pixels:.1f}%")
    if not len(ds):
        problems.append(f"{loader} has no samples: check the folder, split file and suffixes")
    print(f"problems: {len(problems)}")
    for p in problems[:args.max_problems]:
        print(f"  {p}")
    if len(problems) > args.max_problems:
        print(f"  ... and {len(problems) - args.max_problems} more")
    return 1 if problems else 0


def _short(values: list, n: int = 12) -> str:
    return ", ".join(map(str, values[:n])) + (", ..." if len(values) > n else "")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    return run_cli(lambda: run(args))


if __name__ == "__main__":
    import sys

    sys.exit(main())
