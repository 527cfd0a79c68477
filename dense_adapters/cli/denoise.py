"""Denoise one image or a folder of images with a trained restorer; writes the result and a side-by-side PNG.

    python tools/denoise.py noisy.png out/ --config configs/sidd_uformer_t.py --checkpoint work_dirs/x/best.pth
    python tools/denoise.py noisy_dir/ out/ --config CFG --checkpoint CKPT [--gt gt_dir/] [--tile 256]

For each input ``<stem>.png`` it writes ``OUT/<stem>.png`` (denoised) and ``OUT/<stem>_compare.png``
(noisy | denoised [| ground truth]). With ``--gt`` (a file or a folder of same-named files) it prints PSNR/SSIM
of the input and of the output against the ground truth.
"""
from __future__ import annotations

from __future__ import annotations

import argparse
import os
import os.path as osp
import sys
from typing import Optional, Sequence

import numpy as np
import torch

from ..errors import DataError, UserError
from .core import run_cli


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="noisy image file or folder of images")
    p.add_argument("output", help="output folder (created)")
    p.add_argument("--config", required=True, help="config the checkpoint was trained with")
    p.add_argument("--checkpoint", help="trained weights (omit only to try the pipeline with random weights)")
    p.add_argument("--gt", help="ground-truth file or folder (same file names) to report PSNR/SSIM")
    p.add_argument("--tile", type=int, default=0, help="process in tiles of this size (0: whole image)")
    p.add_argument("--tile-overlap", type=int, default=32, help="overlap between tiles in pixels")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--no-compare", action="store_true", help="do not write the side-by-side PNG")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow a checkpoint that needs arbitrary code to unpickle (only for files you trust)")
    return p.parse_args(argv)


def build_model(config: str, checkpoint: Optional[str], device: str, trust_pickle: bool = False) -> torch.nn.Module:
    """Restorer of ``config`` with ``checkpoint`` loaded (safe loader, strict fit), in eval mode on ``device``."""
    from mmengine.config import Config

    from ..engine.safe_load import load_weights
    from ..registry import MODELS
    from ..utils import register_all_modules

    if not osp.isfile(config):
        raise FileNotFoundError(f"config not found: {config}")
    register_all_modules()
    cfg = Config.fromfile(config)
    cfg.model.get("backbone", {}).pop("init_cfg", None)  # the checkpoint holds every weight
    model = MODELS.build(cfg.model)
    if checkpoint:
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f"checkpoint not found: {checkpoint}")
        load_weights(model, checkpoint, strict=True, trust_pickle=trust_pickle)
    else:
        print("warning: no --checkpoint, the model has random weights", file=sys.stderr)
    return model.to(device).eval()


@torch.no_grad()
def denoise(model: torch.nn.Module, img: np.ndarray, tile: int = 0, overlap: int = 32) -> np.ndarray:
    """uint8 [H, W, 3] -> uint8 [H, W, 3]; with ``tile`` the image is cut into overlapping tiles, averaged."""
    device = next(model.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float().to(device) / 255.0
    H, W = x.shape[-2:]
    if not tile or (H <= tile and W <= tile):
        y = model(x, mode="tensor")
    else:
        if overlap >= tile:
            raise UserError(f"--tile-overlap {overlap} must be smaller than --tile {tile}")
        y, n = torch.zeros_like(x), torch.zeros_like(x[:, :1])
        step = tile - overlap
        tops = sorted({min(t, max(H - tile, 0)) for t in range(0, H, step)})
        lefts = sorted({min(t, max(W - tile, 0)) for t in range(0, W, step)})
        for t in tops:
            for s in lefts:
                y[..., t : t + tile, s : s + tile] += model(x[..., t : t + tile, s : s + tile], mode="tensor")
                n[..., t : t + tile, s : s + tile] += 1
        y = y / n
    return (y[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()


def run(args: argparse.Namespace) -> list:
    """Denoise every input; returns the (PSNR in, PSNR out, SSIM in, SSIM out) of the inputs with ground truth."""
    from PIL import Image

    from ..datasets.denoise import list_images, read_rgb
    from ..evaluation.restoration import psnr, ssim

    if osp.isdir(args.input):
        files = list_images(args.input)
        if not files:
            raise FileNotFoundError(f"no images in {args.input}")
    elif osp.isfile(args.input):
        files = [args.input]
    else:
        raise FileNotFoundError(f"input not found: {args.input}")
    model = build_model(args.config, args.checkpoint, args.device, args.trust_pickle)
    os.makedirs(args.output, exist_ok=True)
    scores = []
    for f in files:
        stem = osp.splitext(osp.basename(f))[0]
        noisy = read_rgb(f)
        out = denoise(model, noisy, args.tile, args.tile_overlap)
        Image.fromarray(out).save(osp.join(args.output, f"{stem}.png"))
        panels = [noisy, out]
        if args.gt:
            gt_path = args.gt if osp.isfile(args.gt) else next(
                (g for g in list_images(args.gt) if osp.splitext(osp.basename(g))[0] == stem), None)
            if gt_path is None:
                raise FileNotFoundError(f"no ground truth named {stem}.* in {args.gt}")
            gt = read_rgb(gt_path)
            if gt.shape != noisy.shape:
                raise DataError(f"ground truth {gt_path} is {gt.shape}, the input {noisy.shape}")
            s = (psnr(noisy, gt), psnr(out, gt), ssim(noisy, gt), ssim(out, gt))
            scores.append(s)
            print(f"{stem}: PSNR {s[0]:.2f} -> {s[1]:.2f} dB, SSIM {s[2]:.4f} -> {s[3]:.4f}")
            panels.append(gt)
        if not args.no_compare:
            Image.fromarray(np.concatenate(panels, axis=1)).save(osp.join(args.output, f"{stem}_compare.png"))
    if scores:
        m = np.mean(scores, axis=0)
        print(f"mean over {len(scores)}: PSNR {m[0]:.2f} -> {m[1]:.2f} dB, SSIM {m[2]:.4f} -> {m[3]:.4f}")
    print(f"wrote {len(files)} result(s) to {args.output}")
    return scores


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    return run_cli(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
