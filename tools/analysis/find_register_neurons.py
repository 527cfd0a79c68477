"""Find the register neurons of a ViT (Jiang et al. 2025): the MLP neurons that write the high-norm outlier tokens.

    python tools/analysis/find_register_neurons.py photos/ --arch dinov2_vitl14 --checkpoint W.pth \\
        --detect-layer -2 --threshold 150 --top-k 50 --out work_dirs/neurons_vitl14.json
    python tools/analysis/token_norms.py photos/ --arch dinov2_vitl14 --checkpoint W.pth \\
        --tt-registers work_dirs/neurons_vitl14.json        # before/after

Outliers are the patches above --threshold (or --relative x the median) at the output of --detect-layer. Each
neuron of blocks 0..--max-layer is scored by its mean |activation| at those patches, averaged over the images that
have outliers. Default --max-layer: the block where the outliers emerge (first block whose output already has half
of the final outlier positions). The reference settings for DINOv2 ViT-L/14 are: detect layer -2, threshold 150,
highest layer 17, top 50.
"""
import argparse
import json
import os
import sys

from dense_adapters.analysis.cli import add_backbone_args, add_image_args, build_vit, iter_images, run_tool
from dense_adapters.analysis.test_time_registers import find_register_neurons


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_image_args(p)
    add_backbone_args(p, tt_registers=False)
    p.add_argument("--threshold", type=float, default=150.0, help="absolute outlier norm (default 150)")
    p.add_argument("--relative", type=float, help="instead: outlier above this many times the median patch norm")
    p.add_argument("--detect-layer", type=int, default=-1, help="block whose output defines the outliers")
    p.add_argument("--max-layer", type=int, help="last block searched (default: where the outliers emerge)")
    p.add_argument("--top-k", type=int, default=10, help="how many neurons to keep")
    p.add_argument("--out", default="work_dirs/register_neurons.json", help="JSON written for --tt-registers")
    return p.parse_args(argv)


@run_tool
def main(argv=None) -> dict:
    args = parse_args(argv)
    vit = build_vit(args)
    batches = (x for _, x, _ in iter_images(args, vit.patch_size))
    res = find_register_neurons(vit, batches, detect_layer=args.detect_layer, threshold=args.threshold,
                                relative=args.relative, top_k=args.top_k, max_layer=args.max_layer)
    res["backbone"] = {"config": args.config, "arch": args.arch, "checkpoint": args.checkpoint, "set": args.set}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
    print(f"{res['num_outliers']} outlier patches in {res['num_images_with_outliers']}/{res['num_images']} images "
          f"at block {res['detect_layer']}; they emerge at block {res['emergence_layer']}; searched blocks "
          f"0..{res['max_layer']}")
    for n in res["neurons"]:
        print(f"  block {n['layer']:2d} neuron {n['neuron']:5d}  mean |act| at outliers {n['score']:.3f}")
    print(f"wrote {args.out}")
    return res


if __name__ == "__main__":
    sys.exit(main() and None)
