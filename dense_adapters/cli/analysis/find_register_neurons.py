"""Find the register neurons of a ViT (Jiang et al. 2025): the MLP neurons that write the high-norm outlier tokens.

    python tools/analysis/find_register_neurons.py IMAGES/ --preset dinov2_vitl14 --checkpoint W.pth \\
        --size 224 224 --out work_dirs/neurons_vitl14.json
    python tools/analysis/token_norms.py photos/ --arch dinov2_vitl14 --checkpoint W.pth \\
        --tt-registers work_dirs/neurons_vitl14.json        # before/after
    python tools/analysis/token_norms.py photos/ --arch dinov2_vitl14 --checkpoint W.pth \\
        --tt-registers dinov2_vitl14                        # the authors' released 45 neurons, no search

The search is the authors' (shared/algorithms.py of their repository): outliers are the patches above --threshold
(or --relative x the median) at the output of --detect-layer; every neuron of every block scores its mean
|activation| at those patches, zeroed on an image unless at least --sparsity-fraction of the tokens have activation
below --sparsity-activation (drops neurons active everywhere; 0 switches the filter off); scores are averaged over
the images with outliers, blocks above --max-layer are cut, and the --top-k best kept. --preset sets the authors'
published settings per model (dinov2_vitl14: detect layer -2, threshold 150, highest layer 17, top 50;
openclip_vitb16: -1, 30, 5, 10); options given explicitly win. --method names how the neurons are applied later
(jiang2025: one signed max-magnitude value per block; per_neuron: each neuron its own maximum) and is stored in the
JSON. The authors used 100 ImageNet validation images at 224 x 224.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import torch

from ...analysis.register_neurons import METHODS, SEARCH_PRESETS, find_register_neurons
from ...nn import PRESETS as ARCH_PRESETS
from ..backbone import backbone_from_args
from .common import add_backbone_args, add_image_args, analysis_main, iter_images

DEFAULTS = dict(detect_layer=-1, threshold=150.0, max_layer=None, top_k=10)


def _max_layer(text: str):
    if text in ("all", "emergence"):
        return None if text == "all" else text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a block index, 'all' or 'emergence', got {text!r}") from None


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_image_args(p)
    add_backbone_args(p, tt_registers=False)
    g = p.add_argument_group("search (Jiang et al. 2025)")
    g.add_argument("--preset", choices=sorted(SEARCH_PRESETS),
                   help="the authors' settings for this model (and --arch of the same name if none is given)")
    g.add_argument("--method", choices=METHODS, default="jiang2025",
                   help="how the neurons are to be applied, stored in the JSON (default jiang2025)")
    g.add_argument("--threshold", type=float, help="absolute outlier norm (default 150)")
    g.add_argument("--relative", type=float, help="instead: outlier above this many times the median patch norm")
    g.add_argument("--detect-layer", type=int, help="block whose output defines the outliers (default -1)")
    g.add_argument("--max-layer", type=_max_layer, metavar="N|all|emergence",
                   help="highest block whose neurons are kept (default all; 'emergence': up to the block where "
                        "the outliers appear, this toolkit's earlier default)")
    g.add_argument("--top-k", type=int, help="how many neurons to keep (default 10)")
    g.add_argument("--sparsity-fraction", type=float, default=0.5,
                   help="sparsity filter: a neuron counts on an image only if at least this fraction of the tokens "
                        "is below --sparsity-activation (default 0.5; 0: no filter)")
    g.add_argument("--sparsity-activation", type=float, default=0.5, help="see --sparsity-fraction (default 0.5)")
    g.add_argument("--include-prefix", action="store_true",
                   help="count cls/register tokens above the threshold as outliers too (as the authors' code does)")
    p.add_argument("--out", default="work_dirs/register_neurons.json", help="JSON written for --tt-registers")
    args = p.parse_args(argv)
    preset = SEARCH_PRESETS.get(args.preset, {})
    for key, default in DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, preset.get(key, default))
    if args.preset and not (args.arch or args.config) and args.preset in ARCH_PRESETS:
        args.arch = args.preset
    return args


@torch.no_grad()
def run(args: argparse.Namespace) -> dict:
    vit = backbone_from_args(args)
    batches = (x for _, x, _ in iter_images(args, vit.patch_size))
    res = find_register_neurons(
        vit, batches, detect_layer=args.detect_layer, threshold=args.threshold, relative=args.relative,
        top_k=args.top_k, max_layer=args.max_layer, sparsity_fraction=args.sparsity_fraction,
        sparsity_activation=args.sparsity_activation, include_prefix=args.include_prefix, method=args.method)
    res["preset"] = args.preset
    res["backbone"] = {"config": args.config, "arch": args.arch, "checkpoint": args.checkpoint,
                       "cfg_options": dict(args.cfg_options)}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
    filt = res["sparsity_filter"]
    print(f"{res['num_outliers']} outlier tokens in {res['num_images_with_outliers']}/{res['num_images']} images "
          f"at block {res['detect_layer']}; they emerge at block {res['emergence_layer']}; kept blocks "
          f"0..{res['max_layer']}; sparsity filter "
          + (f">= {filt['fraction']:g} of tokens below {filt['activation']:g}" if filt else "off")
          + (f"; preset {args.preset}" if args.preset else ""))
    for n in res["neurons"]:
        print(f"  block {n['layer']:2d} neuron {n['neuron']:5d}  score {n['score']:.3f}")
    print(f"wrote {args.out} (method {res['method']})")
    return res


def main(argv=None) -> int:
    return analysis_main(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
