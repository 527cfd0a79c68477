"""Denoise one image, a folder of images, or a video (a folder of frames) with a trained restorer; writes the
results and a side-by-side picture.

    python tools/denoise.py noisy.png out/ --config configs/sidd_uformer_t.py --checkpoint work_dirs/x/best.pth
    python tools/denoise.py noisy_dir/ out/ --config CFG --checkpoint CKPT [--gt gt_dir/] [--tile 256]
    python tools/denoise.py noisy.png out/ --config configs/uformer-t_1xb32-750k_sidd-128x128.py \
        --checkpoint Uformer_T.pth                                     # the authors' released SIDD weights
    python tools/denoise.py frames_dir/ out/ --config configs/davis_video_denoise_s.py --checkpoint CKPT \
        [--gt clean_frames_dir/ | --add-noise 30]

Images: for each input ``<stem>.png`` it writes ``OUT/<stem>.png`` (denoised) and ``OUT/<stem>_compare.png``
(noisy | denoised [| ground truth]). Videos (a config whose generator is a video restorer): the frames of the
folder (file-name order) are restored together, in overlapping windows of the clip length the model was trained
on; it writes ``OUT/<frame stem>.png`` and ``OUT/strip.png`` (rows noisy | denoised [| clean], ``--strip-frames``
frames evenly spaced); a folder of frame folders is one video per sub-folder (``OUT/<sequence>/``). With ``--gt``
(a file, or a folder of same-named files) it prints PSNR/SSIM of the input and of the output against the ground
truth (a video: per frame, averaged); ``--add-noise SIGMA`` treats the input as clean, adds Gaussian noise
(sigma on 0..255, ``--seed``; unclipped for videos, as the video protocol) and scores against it.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import DataError, UserError
from .core import run_cli


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="noisy image file, folder of images, or (video model) folder of frames")
    p.add_argument("output", help="output folder (created)")
    p.add_argument("--config", required=True, help="config the checkpoint was trained with")
    p.add_argument("--checkpoint", help="trained weights: a checkpoint of tools/train.py, or the Uformer authors' "
                                        "released weights (converted on load); omit only to try the pipeline with "
                                        "random weights")
    p.add_argument("--gt", help="ground-truth file or folder (same file names) to report PSNR/SSIM")
    p.add_argument("--tile", type=int, default=0, help="process in tiles of this size (0: whole image)")
    p.add_argument("--tile-overlap", type=int, default=32, help="overlap between tiles in pixels")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--no-compare", action="store_true", help="do not write the side-by-side PNG")
    p.add_argument("--add-noise", type=float, metavar="SIGMA",
                   help="the input is clean: add Gaussian noise of this sigma (0..255) and score against the input")
    p.add_argument("--seed", type=int, default=0, help="seed of --add-noise")
    p.add_argument("--strip-frames", type=int, default=6, help="video: frames shown in strip.png")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow a checkpoint that needs arbitrary code to unpickle (only for files you trust)")
    return p.parse_args(argv)


def build_model(config: str, checkpoint: Optional[str], device: str, trust_pickle: bool = False) -> torch.nn.Module:
    """Restorer of ``config`` with ``checkpoint`` loaded (safe loader, strict fit), in eval mode on ``device``."""
    from ..engine.safe_load import load_weights
    from ..registry import MODELS
    from ..utils import register_all_modules
    from .configs import read_config

    register_all_modules()
    cfg = read_config(config)
    cfg.model.get("backbone", {}).pop("init_cfg", None)  # the checkpoint holds every weight
    model = MODELS.build(cfg.model)
    if checkpoint:
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f"checkpoint not found: {checkpoint}")
        from ..models.restorers.uformer import Uformer, is_uformer_release
        from ..nn.convert import load_pretrained

        generator = getattr(model, "generator", None)
        if isinstance(generator, Uformer) and is_uformer_release(checkpoint, trust_pickle):
            # the authors' release (Uformer's model_best.pth): converted into the generator, every tensor used
            print(load_pretrained(generator.net, checkpoint, strict=True, trust_pickle=trust_pickle), file=sys.stderr)
        else:
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


def is_video_restorer(model: nn.Module) -> bool:
    """A Restorer whose generator restores clips [B, T, 3, H, W] (``dense_adapters.VideoUformer``)."""
    from ..models.restorers.video_uformer import VideoUformer

    return isinstance(getattr(model, "generator", None), VideoUformer)


@torch.no_grad()
def denoise_video(model: nn.Module, frames: np.ndarray, tile: int = 0, tile_overlap: int = 32) -> np.ndarray:
    """Frames [T, H, W, 3] on 0..255 (uint8, or float with unclipped noise) -> uint8 [T, H, W, 3], restored in the
    generator's overlapping temporal windows (and spatial tiles of ``tile`` px when given)."""
    if not is_video_restorer(model):
        raise UserError("denoise_video needs a Restorer with a video generator (dense_adapters.VideoUformer)")
    gen = model.generator
    saved = gen.tile, gen.tile_overlap
    if tile:
        gen.tile, gen.tile_overlap = tile, tile_overlap
    try:
        device = next(model.parameters()).device
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)[None].float().to(device) / 255.0
        y = model(x, mode="tensor")[0]
    finally:
        gen.tile, gen.tile_overlap = saved
    return (y.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def video_strip(rows: list, n: int = 6) -> np.ndarray:
    """One picture [rows * H, n * W, 3]: a row per video ([T, H, W, 3] each, e.g. noisy, denoised, clean), ``n``
    frames evenly spaced over the video; float frames are rounded and clipped to 0..255."""
    T = len(rows[0])
    idx = np.unique(np.linspace(0, T - 1, max(1, min(n, T))).round().astype(int))
    to_u8 = lambda v: np.clip(np.round(v), 0, 255).astype(np.uint8)  # noqa: E731
    return np.concatenate([np.concatenate(list(to_u8(np.asarray(r)[idx])), axis=1) for r in rows], axis=0)


def _to_t(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(frames, -1, -3)))


def denoise_video_folder(model: nn.Module, input_dir: str, output_dir: str, gt: Optional[str] = None,
                         add_noise: Optional[float] = None, seed: int = 0, tile: int = 0, tile_overlap: int = 32,
                         strip_frames: int = 6, compare: bool = True,
                         log: Callable[[str], None] = print) -> list[dict]:
    """Denoise every video under ``input_dir`` (one folder of frames, or a folder of frame folders: then
    ``output_dir/<sequence>/``); write ``<frame stem>.png`` per frame and ``strip.png`` (rows noisy | denoised
    [| clean]). With ``gt`` (same layout, same file names) or ``add_noise`` (the input is clean: Gaussian noise of
    that sigma on 0..255, seeded, unclipped as the video protocol) score each sequence (PSNR/SSIM per frame,
    averaged) and return ``[dict(sequence, frames, psnr_in, psnr_out, ssim_in, ssim_out), ...]``."""
    from PIL import Image

    from ..datasets.denoise import AddSyntheticNoise, list_images
    from ..datasets.video import LoadVideoFrames, find_sequences
    from ..evaluation.restoration import psnr, sequence_score, ssim

    if not osp.isdir(input_dir):
        raise UserError(f"a video model denoises a folder of frames (or of frame folders); {input_dir} is not one")
    if gt and add_noise is not None:
        raise UserError("--gt and --add-noise exclude each other: --add-noise scores against the input itself")
    layout, seqs = find_sequences(input_dir)
    results = []
    for name, paths in seqs.items():
        out_dir = output_dir if layout == "frames" else osp.join(output_dir, name)
        os.makedirs(out_dir, exist_ok=True)
        noisy = LoadVideoFrames()(dict(frame_paths=paths))["gt"]
        clean = None
        if add_noise is not None:
            clean = noisy
            noisy = AddSyntheticNoise(sigma=add_noise, clip=False, quantize=False)(
                dict(gt=clean, noise_seed=seed))["img"]
        elif gt:
            gt_dir = gt if layout == "frames" else osp.join(gt, name)
            by_stem = {osp.splitext(osp.basename(g))[0]: g for g in list_images(gt_dir)}
            stems = [osp.splitext(osp.basename(p))[0] for p in paths]
            missing = [s for s in stems if s not in by_stem]
            if missing:
                raise DataError(f"no ground truth for frames {missing[:5]} in {gt_dir}: the same file names are needed")
            clean = LoadVideoFrames()(dict(frame_paths=[by_stem[s] for s in stems]))["gt"]
            if clean.shape != noisy.shape:
                raise DataError(f"ground truth {gt_dir} holds {clean.shape[0]} frames of {clean.shape[1:3]}, the "
                                f"input {noisy.shape[0]} of {noisy.shape[1:3]}: they must match")
        out = denoise_video(model, noisy, tile, tile_overlap)
        for p, im in zip(paths, out):
            Image.fromarray(im).save(osp.join(out_dir, osp.splitext(osp.basename(p))[0] + ".png"))
        if compare:
            rows = [noisy, out] + ([clean] if clean is not None else [])
            Image.fromarray(video_strip(rows, strip_frames)).save(osp.join(out_dir, "strip.png"))
        if clean is not None:
            n01, c = _to_t(noisy.astype(np.float32) / 255.0), _to_t(clean)  # unclipped noise: clamped when scored
            r = dict(sequence=name, frames=len(paths), psnr_in=sequence_score(psnr, n01, c),
                     psnr_out=sequence_score(psnr, _to_t(out), c), ssim_in=sequence_score(ssim, n01, c),
                     ssim_out=sequence_score(ssim, _to_t(out), c))
            results.append(r)
            log(f"{name} ({r['frames']} frames): PSNR {r['psnr_in']:.2f} -> {r['psnr_out']:.2f} dB, "
                f"SSIM {r['ssim_in']:.4f} -> {r['ssim_out']:.4f}")
    if results:
        m = {k: float(np.mean([r[k] for r in results])) for k in ("psnr_in", "psnr_out", "ssim_in", "ssim_out")}
        log(f"mean over {len(results)} sequence(s): PSNR {m['psnr_in']:.2f} -> {m['psnr_out']:.2f} dB, "
            f"SSIM {m['ssim_in']:.4f} -> {m['ssim_out']:.4f}")
    log(f"wrote {sum(len(p) for p in seqs.values())} frame(s) of {len(seqs)} sequence(s) to {output_dir}")
    return results


def run(args: argparse.Namespace) -> list:
    """Denoise every input; returns the (PSNR in, PSNR out, SSIM in, SSIM out) of the inputs with ground truth
    (for a video model: :func:`denoise_video_folder`'s per-sequence dicts)."""
    from PIL import Image

    from ..datasets.denoise import AddSyntheticNoise, list_images, read_rgb
    from ..evaluation.restoration import psnr, ssim

    if not osp.exists(args.input):
        raise FileNotFoundError(f"input not found: {args.input}")
    if args.tile < 0 or args.tile_overlap < 0:
        raise UserError(f"--tile and --tile-overlap must be >= 0, got {args.tile} and {args.tile_overlap}")
    if args.tile and args.tile_overlap >= args.tile:  # before the model is built, whatever the image size
        raise UserError(f"--tile-overlap {args.tile_overlap} must be smaller than --tile {args.tile}")
    if args.gt and args.add_noise is not None:
        raise UserError("--gt and --add-noise exclude each other: --add-noise scores against the input itself")
    model = build_model(args.config, args.checkpoint, args.device, args.trust_pickle)
    if is_video_restorer(model):
        return denoise_video_folder(model, args.input, args.output, gt=args.gt, add_noise=args.add_noise,
                                    seed=args.seed, tile=args.tile, tile_overlap=args.tile_overlap,
                                    strip_frames=args.strip_frames, compare=not args.no_compare)
    if osp.isdir(args.input):
        files = list_images(args.input)
        if not files:
            raise FileNotFoundError(f"no images in {args.input}")
    else:
        files = [args.input]
    os.makedirs(args.output, exist_ok=True)
    scores = []
    for f in files:
        stem = osp.splitext(osp.basename(f))[0]
        noisy, gt = read_rgb(f), None
        if args.add_noise is not None:  # the image protocol: clipped, rounded to uint8
            gt, noisy = noisy, AddSyntheticNoise(sigma=args.add_noise)(dict(gt=noisy, noise_seed=args.seed))["img"]
        out = denoise(model, noisy, args.tile, args.tile_overlap)
        Image.fromarray(out).save(osp.join(args.output, f"{stem}.png"))
        panels = [noisy, out]
        if args.gt and gt is None:
            gt_path = args.gt if osp.isfile(args.gt) else next(
                (g for g in list_images(args.gt) if osp.splitext(osp.basename(g))[0] == stem), None)
            if gt_path is None:
                raise FileNotFoundError(f"no ground truth named {stem}.* in {args.gt}")
            gt = read_rgb(gt_path)
            if gt.shape != noisy.shape:
                raise DataError(f"ground truth {gt_path} is {gt.shape}, the input {noisy.shape}")
        if gt is not None:
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
