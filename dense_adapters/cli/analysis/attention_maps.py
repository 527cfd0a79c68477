"""Attention of the cls token and of every register to the patches, per head and averaged, over each image.

    python tools/analysis/attention_maps.py --arch dinov2_vits14_reg4 --checkpoint dinov2_vits14_reg4_pretrain.pth
    python tools/analysis/attention_maps.py img.jpg --config configs/ade20k_regvit.py --layer 8 --max-heads 6

Writes <image>_attn_b<block>.png (rows: cls, reg0.., tt0.. (test-time registers with --tt-registers); columns:
image, head mean, each head) and attention.json: per image and prefix token, the attention mass on the patches, the
largest single-patch weight (a spiky map: attention sunk into a few outlier patches) and the entropy of the
head-mean map over the patches in bits.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

import torch

from ...analysis import plotting
from ...analysis.attention import prefix_attention
from ...errors import UserError
from ..backbone import backbone_from_args
from .common import add_backbone_args, add_image_args, analysis_main, block_index, iter_images, maybe_tt


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_image_args(p)
    add_backbone_args(p)
    p.add_argument("--layer", type=int, default=-1, help="block whose attention is shown (default: last)")
    p.add_argument("--max-heads", type=int, help="show at most this many heads (the mean uses all)")
    return p.parse_args(argv)


def _stats(maps, labels) -> dict:
    """maps [P, heads, h, w] -> per prefix token: patch mass, peak weight, entropy (bits) of the head mean."""
    out = {}
    for r, name in enumerate(labels):
        m = maps[r].mean(0).flatten()  # [h*w]
        q = m / m.sum().clamp_min(1e-12)
        ent = -(q * q.clamp_min(1e-12).log2()).sum().item()
        out[name] = {"patch_mass": m.sum().item(), "peak": maps[r].max().item(), "entropy_bits": ent,
                     "max_entropy_bits": math.log2(m.numel())}
    return out


@torch.no_grad()
def run(args: argparse.Namespace) -> dict:
    vit = backbone_from_args(args)
    maybe_tt(vit, args)
    layer = block_index(args.layer, vit.depth, "--layer")
    if layer in vit.skip_layers:
        raise UserError(f"block {layer} is a SkipAt block and computes no attention: pick --layer among "
                         f"{[i for i in range(vit.depth) if i not in vit.skip_layers]}")
    os.makedirs(args.out_dir, exist_ok=True)
    summary, files = {"layer": layer, "images": {}}, []
    for name, x, shown in iter_images(args, vit.patch_size):
        res = prefix_attention(vit, x, [layer])
        maps = res["maps"][0][0]  # [P, heads, h, w]
        path = os.path.join(args.out_dir, f"{name}_attn_b{layer}.png")
        files.append(plotting.attention_grid(shown, maps, res["labels"], path, f"{name}: block {layer}",
                                             args.max_heads))
        summary["images"][name] = _stats(maps, res["labels"])
    with open(os.path.join(args.out_dir, "attention.json"), "w") as f:
        json.dump(summary, f, indent=1)
    for name, per in summary["images"].items():
        desc = ", ".join(f"{k}: peak {v['peak']:.3f} entropy {v['entropy_bits']:.2f}/{v['max_entropy_bits']:.2f} bits"
                         for k, v in per.items())
        print(f"{name}: {desc}")
    print(f"wrote {len(files)} figures and attention.json to {args.out_dir}")
    summary["files"] = files
    return summary


def main(argv=None) -> int:
    return analysis_main(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
