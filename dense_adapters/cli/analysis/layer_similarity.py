"""Linear CKA between every pair of blocks, for (a) cls attention maps and (b) attention-block outputs (SkipAt).

    python tools/analysis/layer_similarity.py --arch deit3_small_patch16_224 --checkpoint deit3_s.pth
    python tools/analysis/layer_similarity.py /data/val_images --max-images 2000 --config configs/ade20k_regvit.py

Examples are images (each shown in --views crops); a block's representation of an image is its cls attention over the
patches (heads x patches) or its attention-branch output (tokens x channels), flattened. CKA is the mini-batch
estimate of Nguyen et al. (2021): unbiased HSIC summed over batches of --batch-size (>= 4) images, so any number of
images fits in memory. Writes cka_cls_attention.png, cka_attn_out.png and cka.json (matrices, mean CKA of adjacent
blocks). SkipAt blocks compute no attention: they are left out of (a).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch

from ...analysis import plotting
from ...analysis.attention import cls_attention_features
from ...analysis.cka import MinibatchCKA
from ...analysis.images import load_images, preprocess
from ...errors import UserError
from ..backbone import backbone_from_args
from .common import add_backbone_args, add_image_args, analysis_main, maybe_tt


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_image_args(p, default_size=224)
    add_backbone_args(p)
    p.add_argument("--views", type=int, default=4, help="crops per image: the whole image plus random crops/flips")
    p.add_argument("--batch-size", type=int, default=8, help="images per CKA mini-batch (>= 4)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.batch_size < 4:
        p.error("--batch-size must be >= 4 (the unbiased HSIC estimator needs 4 examples per batch)")
    if len(args.size) == 1:
        args.size = args.size * 2  # a fixed H x W: every example needs the same representation size
    return args


def _views(img: np.ndarray, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    out = [img]
    H, W = img.shape[:2]
    for _ in range(n - 1):
        s = rng.uniform(0.5, 1.0)
        h, w = max(8, int(H * s)), max(8, int(W * s))
        top, left = rng.integers(0, H - h + 1), rng.integers(0, W - w + 1)
        crop = img[top : top + h, left : left + w]
        out.append(np.ascontiguousarray(crop[:, ::-1]) if rng.random() < 0.5 else crop)
    return out


def _batches(args, patch: int):
    rng = np.random.default_rng(args.seed)
    xs = []
    for _, img in load_images(args.images, args.max_images):
        for v in _views(img, args.views, rng):
            xs.append(preprocess(v, args.size, patch)[0])
            if len(xs) == args.batch_size:
                yield torch.cat(xs)
                xs = []
    if xs:
        print(f"note: the last {len(xs)} examples do not fill a batch of {args.batch_size} and are left out")


@torch.no_grad()
def run(args: argparse.Namespace) -> dict:
    vit = backbone_from_args(args)
    maybe_tt(vit, args)
    all_blocks = list(range(vit.depth))
    attn_blocks = [i for i in all_blocks if i not in vit.skip_layers]
    cka_attn, cka_out = MinibatchCKA(), MinibatchCKA()
    for x in _batches(args, vit.patch_size):
        if attn_blocks == all_blocks:
            res = vit.forward_blocks(x, all_blocks, capture=("attn", "attn_out"))
            attn = res["attn"]
        else:
            res = vit.forward_blocks(x, all_blocks, capture=("attn_out",))
            attn = vit.forward_blocks(x, attn_blocks, capture=("attn",))["attn"]
        cka_attn.update([cls_attention_features(a, vit) for a in attn])
        cka_out.update(res["attn_out"])
    if cka_out.num_batches == 0:
        raise UserError(f"no full batch of {args.batch_size} examples: pass more images, more --views or a smaller "
                         "--batch-size")
    os.makedirs(args.out_dir, exist_ok=True)
    summary = {"num_examples": cka_out.num_examples, "num_batches": cka_out.num_batches, "size": args.size}
    files = []
    for key, acc, blocks, title in (("cls_attention", cka_attn, attn_blocks, "CKA of cls attention maps"),
                                    ("attn_out", cka_out, all_blocks, "CKA of attention-block outputs")):
        m = acc.compute()
        adj = [m[i, i + 1].item() for i in range(len(blocks) - 1)]
        summary[key] = {"blocks": blocks, "cka": m.tolist(), "adjacent": adj,
                        "mean_adjacent": float(np.nanmean(adj)) if adj else None}
        files.append(plotting.similarity_heatmap(
            m, os.path.join(args.out_dir, f"cka_{key}.png"),
            f"{title} ({cka_out.num_examples} ex.)", labels=blocks))
        if adj:
            print(f"{title}: mean CKA of adjacent blocks {summary[key]['mean_adjacent']:.3f}")
    with open(os.path.join(args.out_dir, "cka.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(f"wrote {len(files)} heatmaps and cka.json ({cka_out.num_examples} examples) to {args.out_dir}")
    summary["files"] = files
    return summary


def main(argv=None) -> int:
    return analysis_main(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
