"""Evaluate depth maps produced by any system against ground truth, under the NYU protocol of docs/depth.md.

    python tools/eval_depth.py PRED_DIR GT_DIR [--crop eigen] [--out-dir vis/] [--json metrics.json]

Files pair by name stem (``PRED_DIR/x.png`` or ``x.npy`` with ``GT_DIR/x.png`` or ``x.npy``; subfolders are
searched). ``.png``: uint16 depth in millimetres (NYU / mmseg layout; ``--png-scale`` units per metre, default
1000; 0 = no ground truth); ``.npy``: float depth in metres, [H, W] (or [1, H, W]). Predictions must have the
ground truth's size (``--resize-pred`` resizes them bilinearly instead of failing). Prints per-image and
pixel-pooled metrics; ``--out-dir`` also writes ``<stem>_pred.png``, ``<stem>_gt.png`` (colour-mapped depth,
magma, near is dark, one scale for both: the 1st..99th percentile of the image's valid ground truth; no ground
truth black) and ``<stem>_err.png`` (absolute relative error
|pred - gt| / gt, 0..0.5, inferno; pixels outside the evaluated region black).
"""
from __future__ import annotations

import argparse
import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import DataError, UserError
from .core import run_cli

EXTS = (".png", ".npy")


def fail(msg: str) -> "None":
    """Stop with a one-line error about the input maps."""
    raise DataError(msg)


def find_maps(folder: str, what: str) -> Dict[str, str]:
    """stem -> path of every .png/.npy below ``folder``."""
    if not os.path.isdir(folder):
        fail(f"{what} folder {folder!r} does not exist")
    found: Dict[str, str] = {}
    for dirpath, _, files in os.walk(folder):
        for f in sorted(files):
            stem, ext = os.path.splitext(f)
            if ext.lower() in EXTS:
                rel = os.path.relpath(os.path.join(dirpath, stem), folder)
                if rel in found:
                    fail(f"{what} folder has two maps named {rel!r} ({found[rel]} and {os.path.join(dirpath, f)})")
                found[rel] = os.path.join(dirpath, f)
    if not found:
        fail(f"{what} folder {folder!r} has no .png or .npy depth maps")
    return found


def load_depth(path: str, png_scale: float = 1000.0) -> np.ndarray:
    """Depth in metres, float64 [H, W]: PNG as stored value / png_scale, .npy as is."""
    if path.lower().endswith(".npy"):
        try:
            d = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            fail(f"cannot read {path} ({' '.join(str(e).split())[:160]}): save depth as a float .npy array")
    else:
        import cv2

        d = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if d is None:
            fail(f"cannot read {path}")
        if d.ndim != 2:
            fail(f"{path} has {d.shape[2]} channels: depth PNGs must be single-channel (uint16 millimetres)")
        if d.dtype == np.uint8:
            fail(f"{path} is an 8-bit PNG: depth PNGs hold uint16 millimetres (8 bits hold at most 255 mm); save "
                 "16-bit PNGs or float .npy metres")
        d = d.astype(np.float64) / png_scale
    d = np.squeeze(np.asarray(d, dtype=np.float64))
    if d.ndim != 2:
        fail(f"{path} holds an array of shape {d.shape}: expected a depth map [H, W]")
    return d


def colorize(x: np.ndarray, vmin: float, vmax: float, cmap: str, valid: Optional[np.ndarray] = None) -> np.ndarray:
    """uint8 RGB [H, W, 3] of ``x`` through a matplotlib colormap; pixels not ``valid`` black."""
    from matplotlib import colormaps

    t = np.clip((np.nan_to_num(x) - vmin) / max(vmax - vmin, 1e-12), 0, 1)
    rgb = (colormaps[cmap](t)[..., :3] * 255).round().astype(np.uint8)
    if valid is not None:
        rgb[~valid] = 0
    return rgb


def save_maps(out_dir: str, stem: str, pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, max_depth: float) -> None:
    from PIL import Image

    path = os.path.join(out_dir, stem)
    os.makedirs(os.path.dirname(path) or out_dir, exist_ok=True)
    has_gt = (gt > 0) & np.isfinite(gt)
    lo, hi = np.percentile(gt[has_gt], (1, 99)) if has_gt.any() else (0.0, max_depth)
    Image.fromarray(colorize(pred, lo, hi, "magma")).save(path + "_pred.png")
    Image.fromarray(colorize(gt, lo, hi, "magma", has_gt)).save(path + "_gt.png")
    err = np.abs(pred - gt) / np.where(gt > 0, gt, 1)
    Image.fromarray(colorize(err, 0, 0.5, "inferno", mask)).save(path + "_err.png")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pred_dir", help="predicted depth maps (.png mm or .npy m)")
    p.add_argument("gt_dir", help="ground-truth depth maps (.png mm or .npy m)")
    p.add_argument("--min-depth", type=float, default=1e-3, help="valid ground truth above this (m)")
    p.add_argument("--max-depth", type=float, default=10.0, help="valid ground truth below this (m)")
    p.add_argument("--crop", default="eigen", choices=("eigen", "eigen_scaled", "none"),
                   help="eigen: gt[45:471, 41:601] on 480x640 maps (default); eigen_scaled: same fractions of any "
                        "size; none")
    p.add_argument("--no-clip", action="store_true", help="do not clip predictions to [min-depth, max-depth]")
    p.add_argument("--png-scale", type=float, default=1000.0, help="PNG units per metre (default 1000: mm)")
    p.add_argument("--resize-pred", action="store_true", help="resize predictions bilinearly to the gt size")
    p.add_argument("--out-dir", help="write colour-mapped depth and error maps here")
    p.add_argument("--json", help="write the metrics to this JSON file")
    return p.parse_args(argv)


def evaluate(args: argparse.Namespace) -> Tuple[Dict[str, float], List[Tuple[str, Dict[str, float]]]]:
    """Run the evaluation; returns the aggregated metrics and the per-image sums."""
    from ..evaluation.depth import aggregate, clip_prediction, eval_mask, image_sums

    gts = find_maps(args.gt_dir, "ground-truth")
    preds = find_maps(args.pred_dir, "prediction")
    missing = sorted(set(gts) - set(preds))
    if missing:
        fail(f"{len(missing)} of {len(gts)} ground-truth maps have no prediction in {args.pred_dir!r} "
             f"(first: {missing[0]!r}); name predictions after the ground truth")
    crop = None if args.crop == "none" else args.crop
    sums = []
    for stem in sorted(gts):
        gt = load_depth(gts[stem], args.png_scale)
        pred = load_depth(preds[stem], args.png_scale)
        bad = int((~np.isfinite(pred)).sum())
        if bad:
            fail(f"{stem}: the prediction {preds[stem]} has {bad} NaN or infinite values: fix the model's output "
                 "(a diverged model predicts NaN) before evaluating")
        if pred.shape != gt.shape:
            if not args.resize_pred:
                fail(f"{stem}: prediction {pred.shape[0]}x{pred.shape[1]} and ground truth {gt.shape[0]}x"
                     f"{gt.shape[1]} differ in size: predict at the ground truth's size or pass --resize-pred")
            import cv2

            pred = cv2.resize(pred, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_LINEAR)
        try:
            s = image_sums(pred, gt, args.min_depth, args.max_depth, crop, clip_pred=not args.no_clip)
        except ValueError as e:
            fail(f"{stem}: {e}")
        sums.append((stem, s))
        if args.out_dir:
            shown = pred if args.no_clip else clip_prediction(pred, args.min_depth, args.max_depth)
            save_maps(args.out_dir, stem, shown, gt, eval_mask(gt, args.min_depth, args.max_depth, crop),
                      args.max_depth)
    try:
        metrics = aggregate([s for _, s in sums])
    except ValueError as e:
        fail(str(e))
    return dict(metrics), sums


def run(args: argparse.Namespace) -> dict:
    """Evaluate, print the table, write the JSON; returns the metrics."""
    from ..evaluation.depth import format_table

    if args.min_depth < 0 or args.min_depth >= args.max_depth:
        raise UserError(f"need 0 <= --min-depth < --max-depth, got {args.min_depth} and {args.max_depth}")
    metrics, sums = evaluate(args)
    print(f"{int(metrics['n_images'])} images ({int(metrics['n_empty'])} without valid pixels left out), "
          f"valid {args.min_depth:g} < gt < {args.max_depth:g} m, crop={args.crop}, clip={not args.no_clip}")
    print(format_table(metrics))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(metrics=metrics, protocol=dict(min_depth=args.min_depth, max_depth=args.max_depth,
                                                          crop=args.crop, clip_pred=not args.no_clip)), f, indent=2)
    if args.out_dir:
        print(f"colour maps written to {args.out_dir}")
    return metrics


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    return run_cli(lambda: run(args))


if __name__ == "__main__":
    import sys

    sys.exit(main())
