"""Denoising with a built :class:`dense_adapters.Restorer` outside the Runner: whole videos (folders of frames),
the files they write and the scores they print (the logic of ``tools/denoise.py``'s video path)."""
from __future__ import annotations

import os
import os.path as osp
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from ...errors import DataError, UserError
from .video_uformer import VideoUformer


def is_video_restorer(model: nn.Module) -> bool:
    """A Restorer whose generator restores clips [B, T, 3, H, W] (``dense_adapters.VideoUformer``)."""
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

    from ...datasets.denoise import AddSyntheticNoise, list_images
    from ...datasets.video import LoadVideoFrames, find_sequences
    from ...evaluation.restoration import psnr, sequence_score, ssim

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
