"""LOST unsupervised object discovery (single object per image) with a dense-adapters ViT, and its CorLoc.

    # a preset and a checkpoint (converted on load; formats in docs/backbones.md)
    python tools/lost.py --arch dinov2_vits14_reg4 --checkpoint dinov2_vits14_reg4_pretrain.pth \\
        --setting registers-dinov2 --dataset VOC07 --data-root data/VOCdevkit/VOC2007 --set trainval \\
        --out work_dirs/lost_voc07
    # DINOv3 (RoPE, 4 registers), a Meta .pth; a Hugging Face folder works without --arch
    python tools/lost.py --arch dinov3_vits16 --checkpoint dinov3_vits16_pretrain_lvd1689m-08c60483.pth \\
        --dataset VOC07 --data-root data/VOCdevkit/VOC2007 --out work_dirs/lost_dinov3
    # a backbone config (mmengine config with model.backbone, or a file defining `backbone = dict(...)`)
    python tools/lost.py configs/my_backbone.py --dataset folder --data-root my_photos --out work_dirs/lost

Writes OUT/preds.json (one record per image: predicted box, seed, GT boxes, best IoU, correct, and
``degenerate``: every patch had the same degree, so the seed was arbitrary) and OUT/results.json (CorLoc,
``num_degenerate``), prints a progress bar and the CorLoc; ``--visualize N`` saves the first N images with
the seed (cyan), the expansion mask (yellow), the predicted box (red) and GT boxes (green) under OUT/vis/.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Optional, Sequence

import numpy as np
import torch

from .backbone import add_backbone_args, backbone_from_args
from .core import run_cli

FEATURE_CHOICES = ("k", "q", "v", "out")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_backbone_args(p, config_positional=True, deprecated_overrides=("--arch-options",))
    p.add_argument("--dataset", default="VOC07", choices=("VOC07", "VOC12", "COCO20k", "folder"))
    p.add_argument("--data-root", required=True, help="VOC: the folder with JPEGImages/ (VOCdevkit/VOC2007); "
                   "COCO20k: the folder with train2014/; folder: any folder of images")
    p.add_argument("--set", default="trainval", help="VOC split (ImageSets/Main/<set>.txt); COCO20k: train")
    p.add_argument("--no-hard", action="store_true", help="VOC: drop truncated/difficult objects and the images "
                   "left without boxes (LOST's --no_hard)")
    p.add_argument("--ann-file",
                   help="COCO20k: instances JSON (default DATA_ROOT/annotations/instances_train2014.json)")
    p.add_argument("--split-file", help="COCO20k: file list (default DATA_ROOT/coco_20k_filenames.txt)")
    from ..discovery import SETTINGS

    p.add_argument("--setting", default="lost", choices=sorted(SETTINGS),
                   help="named LOST setting (features, centring, Gram-matrix bias) per backbone family: lost "
                        "(DINO, default), registers-dinov2 (DINOv2 keys + a bias), centered; see docs/lost.md. "
                        "--which-features, --center and --bias override its parts")
    p.add_argument("--which-features", choices=FEATURE_CHOICES,
                   help="keys/queries/values of the block (heads concatenated) or its output tokens (default: the "
                        "setting's, keys)")
    p.add_argument("--block", type=int, default=-1, help="block index (default: the last)")
    p.add_argument("--k-patches", type=int, default=100, help="lowest-degree patches considered for expansion")
    p.add_argument("--center", action="store_true", default=None, help="centre features before the similarity")
    p.add_argument("--bias", type=_bias, help="added to every similarity: a number, or mean / median (minus the "
                                              "image's mean / median similarity); default: the setting's")
    p.add_argument("--batch-size", type=int, default=1, help="images of equal padded size run together")
    p.add_argument("--max-images", type=int, help="stop after this many images (quick looks)")
    p.add_argument("--seed", type=int, default=0, help="torch seed (only matters for weights not loaded)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--visualize", type=int, default=0, metavar="N", help="save PNGs of the first N images")
    args = p.parse_args(argv)
    if args.config is not None and args.arch is not None:
        p.error("give either a backbone config or --arch PRESET (not both)")
    if args.config is None and args.arch is None and not args.checkpoint:
        p.error("give a backbone config, --arch PRESET, or a --checkpoint that names its architecture (a Hugging Face "
                "folder, a native checkpoint)")
    setting = SETTINGS[args.setting]
    args.which_features = args.which_features or setting["which"]
    args.center = setting["center"] if args.center is None else args.center
    args.bias = setting["bias"] if args.bias is None else args.bias
    if getattr(args, "deprecated_override", None) and not args.arch:
        p.error("--arch-options needs --arch (with a config use --cfg-options model.backbone.KEY=VALUE)")
    if args.k_patches < 1 or args.batch_size < 1:
        p.error("--k-patches and --batch-size must be >= 1")
    return args


def _bias(text: str):
    """--bias: a float, or one of the per-image modes."""
    from ..discovery import BIAS_MODES

    if text in BIAS_MODES:
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a number nor one of {', '.join(BIAS_MODES)}") from None


def image_size(path: str) -> tuple[int, int]:
    """(H, W) from the file header (one line for a missing or unreadable file)."""
    from ..imageio import image_size as _size

    return _size(path)


def save_visualization(path: str, img: np.ndarray, out, b: int, patch: int, pred: np.ndarray,
                       gt: Optional[np.ndarray]) -> None:
    """Image with the expansion mask, the seed patch, the predicted box (red) and GT boxes (green)."""
    from mmengine.visualization import Visualizer
    from PIL import Image

    H, W = img.shape[:2]
    vis = Visualizer.get_instance("lost_vis")
    vis.set_image(img)
    mask = out.mask[b].cpu().numpy().repeat(patch, 0).repeat(patch, 1)[:H, :W]
    vis.draw_binary_masks(mask, colors="yellow", alphas=0.35)
    w = out.mask.shape[2]
    r, c = divmod(int(out.seed[b]), w)
    inside = np.array([W - 1, H - 1, W - 1, H - 1], dtype=np.float64)  # the visualizer warns on x == W
    seed_box = np.minimum([[c * patch, r * patch, (c + 1) * patch, (r + 1) * patch]], inside)
    vis.draw_bboxes(seed_box, edge_colors="cyan", face_colors="cyan", alpha=0.6)
    if gt is not None and len(gt):
        vis.draw_bboxes(np.minimum(gt, inside), edge_colors="lime", line_widths=2)
    vis.draw_bboxes(np.minimum(pred.reshape(1, 4), inside), edge_colors="red", line_widths=3)
    Image.fromarray(vis.get_image()).save(path)


def run(args: argparse.Namespace) -> dict:
    from mmengine.utils import ProgressBar

    from ..datasets.discovery import build_discovery_dataset, normalize_image, pad_to, padded_size, size_batches
    from ..discovery import boxes_to_image, box_iou, extract_features, lost

    dataset = build_discovery_dataset(args.dataset, args.data_root, args.set, args.no_hard, args.ann_file,
                                      args.split_file)
    torch.manual_seed(args.seed)
    vit = backbone_from_args(args).to(args.device).eval()
    patch = vit.patch_size
    n = len(dataset) if args.max_images is None else min(args.max_images, len(dataset))
    sizes = [image_size(dataset[i].path) for i in range(n)]
    batches = size_batches([padded_size(s, patch) for s in sizes], args.batch_size)
    os.makedirs(args.out, exist_ok=True)
    vis_dir = os.path.join(args.out, "vis")
    if args.visualize:
        os.makedirs(vis_dir, exist_ok=True)
    print(f"LOST on {dataset.name}: {n} images, {args.which_features} of block {args.block}, "
          f"{vit.num_prefix_tokens} prefix tokens ({vit.num_register_tokens} registers), k={args.k_patches}")

    records: dict[int, dict] = {}
    bar = ProgressBar(n, file=sys.stdout)  # the default is the sys.stdout of when mmengine was imported
    t0 = time.perf_counter()
    with torch.no_grad():
        for idx in batches:
            imgs = [dataset.load(i) for i in idx]
            hw = padded_size(sizes[idx[0]], patch)
            x = torch.stack([pad_to(normalize_image(im), hw) for im in imgs]).to(args.device)  # [B, 3, H, W]
            feats, grid = extract_features(vit, x, args.which_features, args.block)  # [B, h*w, C]
            out = lost(feats, grid, args.k_patches, center=args.center, bias=args.bias)
            boxes = boxes_to_image(out.box, patch, torch.tensor([sizes[i] for i in idx])).cpu()  # [B, 4]
            for b, i in enumerate(idx):
                item = dataset[i]
                rec = {"name": item.name, "image_size": list(sizes[i]), "grid": list(grid),
                       "box": [round(v, 2) for v in boxes[b].tolist()],
                       "seed": list(divmod(int(out.seed[b]), grid[1])), "seed_in_mask": bool(out.seed_in_mask[b]),
                       "degenerate": bool(out.degenerate[b]), "seed_ties": int(out.seed_ties[b]),
                       "bias": round(float(out.bias[b]), 4)}
                if item.boxes is not None:
                    gt = torch.as_tensor(item.boxes, dtype=torch.float64).reshape(-1, 4)
                    best = float(box_iou(boxes[b : b + 1], gt).max()) if len(gt) else 0.0
                    rec.update(gt_boxes=gt.tolist(), iou=round(best, 4), correct=best >= 0.5)
                records[i] = rec
                if i < args.visualize:
                    save_visualization(os.path.join(vis_dir, f"{item.name}.png"), imgs[b], out, b, patch,
                                       boxes[b].numpy(), item.boxes)
            bar.update(len(idx))
    elapsed = time.perf_counter() - t0
    print()
    preds = [records[i] for i in range(n)]
    evaluated = [r for r in preds if "correct" in r]
    hits = sum(r["correct"] for r in evaluated)
    corloc = 100.0 * hits / len(evaluated) if evaluated else None
    degenerate = [r["name"] for r in preds if r["degenerate"]]
    results = {"dataset": dataset.name, "num_images": n, "num_evaluated": len(evaluated), "num_correct": hits,
               "num_skipped": getattr(dataset, "num_skipped", 0), "corloc": corloc, "setting": args.setting,
               "which_features": args.which_features, "block": args.block, "k_patches": args.k_patches,
               "center": args.center, "bias": args.bias, "num_prefix_tokens": vit.num_prefix_tokens,
               "num_degenerate": len(degenerate), "degenerate_images": degenerate,
               "images_per_s": round(n / elapsed, 3) if elapsed > 0 else None}
    with open(os.path.join(args.out, "preds.json"), "w") as f:  # a JSON list, one image per line
        f.write("[\n" + ",\n".join(json.dumps(r) for r in preds) + "\n]\n")
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    if degenerate:
        print(f"warning: on {len(degenerate)}/{n} images every patch has the same degree, so the seed is arbitrary and "
              f"the box meaningless ({', '.join(degenerate[:5])}{' ...' if len(degenerate) > 5 else ''}): try "
              "--setting registers-dinov2 or --bias mean (docs/lost.md)", file=sys.stderr)
    if corloc is None:
        print(f"{n} boxes written to {os.path.join(args.out, 'preds.json')} (no annotations: no CorLoc)")
    else:
        print(f"CorLoc: {corloc:.2f} ({hits}/{len(evaluated)}); predictions in {os.path.join(args.out, 'preds.json')}")
    return results


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    return run_cli(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
