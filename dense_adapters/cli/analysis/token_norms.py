"""Norms of every output token per block (patch / cls / registers), outliers per image and per layer.

    python tools/analysis/token_norms.py --arch dinov2_vitl14 --checkpoint dinov2_vitl14_pretrain.pth
    python tools/analysis/token_norms.py photos/ --config configs/ade20k_regvit.py --relative 4
    python tools/analysis/token_norms.py --arch dinov2_vitl14 --checkpoint W.pth --tt-registers neurons.json

Writes to --out-dir: norms_hist.png (log counts, block --hist-layer), <image>_outliers.png (outlier patches boxed;
with --tt-registers a second row: the same model with test-time registers), <image>_layers.png (patch-norm map per
block and the outlier fraction per block), summary.json (per block: norm statistics, outlier fraction and
(row, col) positions per image; 'tt_registers' holds the same after the change).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import torch

from ...analysis import plotting
from ...analysis.norms import outlier_mask, summarize, token_norms
from ..backbone import backbone_from_args
from .common import add_backbone_args, add_image_args, analysis_main, block_index, iter_images, maybe_tt


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_image_args(p)
    add_backbone_args(p)
    p.add_argument("--threshold", type=float, default=150.0, help="absolute norm above which a patch is an outlier")
    p.add_argument("--relative", type=float,
                   help="instead: outlier when the norm exceeds this many times the image's median patch norm")
    p.add_argument("--layers", type=int, nargs="*", help="blocks to measure (default: all)")
    p.add_argument("--hist-layer", type=int, default=-1, help="block for the histogram and overlays (default last)")
    return p.parse_args(argv)


def _measure(vit, items, layers):
    return [token_norms(vit, x, layers) for _, x, _ in items]


def _report(per_image, names, args) -> dict:
    flat = [ln for lns in per_image for ln in lns]
    return summarize(flat, args.threshold, args.relative, names).as_dict()


@torch.no_grad()
def run(args: argparse.Namespace) -> dict:
    vit = backbone_from_args(args)
    items = list(iter_images(args, vit.patch_size))
    names = [n for n, _, _ in items]
    layers = args.layers if args.layers else list(range(vit.depth))
    layers = [block_index(i, vit.depth, "--layers") for i in layers]
    hist_layer = block_index(args.hist_layer, vit.depth, "--hist-layer")
    if hist_layer not in layers:
        layers = sorted(set(layers) | {hist_layer})
    os.makedirs(args.out_dir, exist_ok=True)
    before = _measure(vit, items, layers)
    summary = _report(before, names, args)
    after = None
    if maybe_tt(vit, args) is not None:
        after = _measure(vit, items, layers)
        summary["tt_registers"] = _report(after, names, args)
        summary["tt_registers"]["register_neurons"] = {str(k): v for k, v in vit.register_neurons.items()}
        summary["tt_registers"]["method"] = vit.test_time_register_method
    thr = None if args.relative is not None else args.threshold
    k = layers.index(hist_layer)
    crit = f"> {args.relative} x median" if args.relative is not None else f"> {args.threshold:g}"

    def groups(runs):
        g = {"patch": [r[k].patches for r in runs], "cls": [r[k].cls for r in runs if r[k].cls is not None],
             "registers": [r[k].registers for r in runs]}
        return {name: torch.cat([t.flatten() for t in v]) for name, v in g.items() if v}

    files = [plotting.norm_histogram(groups(before), os.path.join(args.out_dir, "norms_hist.png"), thr,
                                     f"block {hist_layer} token norms, {len(items)} images")]
    if after is not None:
        files.append(plotting.norm_histogram(groups(after), os.path.join(args.out_dir, "norms_hist_tt.png"), thr,
                                             f"block {hist_layer} with test-time registers"))
    for i, ((name, _, shown), runs) in enumerate(zip(items, before)):
        pn = runs[k].patches[0]
        panels = [("original", pn, outlier_mask(runs[k].patches, args.threshold, args.relative)[0])]
        if after is not None:
            pa = after[i][k].patches[0]
            panels.append(("test-time registers", pa, outlier_mask(after[i][k].patches, args.threshold,
                                                                    args.relative)[0]))
        files.append(plotting.outlier_overlays(shown, panels, os.path.join(args.out_dir, f"{name}_outliers.png")))
        maps = [ln.patches[0] for ln in runs]
        masks = [outlier_mask(ln.patches, args.threshold, args.relative)[0] for ln in runs]
        fr = [m.float().mean().item() for m in masks]
        files.append(plotting.layer_norm_grid(maps, masks, layers, os.path.join(args.out_dir, f"{name}_layers.png"),
                                              fr))
    with open(os.path.join(args.out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(f"outlier patches ({crit}) per block over {len(items)} images:")
    for L in summary["layers"]:
        line = f"  block {L['layer']:2d}: {100 * L['outlier_fraction']:6.2f}%  max patch norm {L['patch']['max']:.1f}"
        if after is not None:
            A = next(a for a in summary["tt_registers"]["layers"] if a["layer"] == L["layer"])
            line += f"  | tt-registers: {100 * A['outlier_fraction']:6.2f}%  max {A['patch']['max']:.1f}"
        print(line)
    print(f"wrote {len(files)} figures and summary.json to {args.out_dir}")
    summary["files"] = files
    return summary


def main(argv=None) -> int:
    return analysis_main(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
