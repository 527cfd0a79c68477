"""Video denoising with SkipAt, measured: complexity, CPU throughput and a short training, plain vs SkipAt.

    python benchmarks/video_denoise.py                                  # all three parts, tables on stdout
    python benchmarks/video_denoise.py --parts flops speed --out-md video_bench.md
    python benchmarks/video_denoise.py --parts train --train-iters 300 --sample data/samples/video

1. ``flops``: parameters and multiply-adds (``mmengine.analysis.FlopAnalyzer``, fvcore's convention: matmuls,
   linears and convs) of VideoUformer ``--preset`` at ``--flops-size`` (T H W), total / encoder / decoder.
2. ``speed``: CPU forward time (batch 1, ``torch.no_grad``, ``--threads``) at ``--time-size``; the models run
   interleaved round by round in one process, so background load hits them alike; median per model and the
   throughput ratio to the plain model.
3. ``train``: the tiny VideoUformer of ``configs/video-uformer-tiny[-skipat]_1xb4-0.2k_video-sample-*.py`` (and
   the SkipAt config with ``skip_mode='parametric'``) trained ``--train-iters`` iterations on the video sample
   through mmengine's Runner (seed 0, same data order), then the whole held-out sequences scored (PSNR/SSIM per
   frame, averaged per sequence, then over sequences) next to the noisy input's.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import statistics
import tempfile
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MODES = (("plain", None), ("SkipAt identity", "identity"), ("SkipAt parametric", "parametric"))
SAMPLE_PLAIN = "video-uformer-tiny_1xb4-0.2k_video-sample-sigma30-t3-32x32.py"
SAMPLE_SKIPAT = "video-uformer-tiny-skipat_1xb4-0.2k_video-sample-sigma30-t3-32x32.py"
CONFIGS = {None: SAMPLE_PLAIN, "identity": SAMPLE_SKIPAT, "parametric": SAMPLE_SKIPAT}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="+", default=["flops", "speed", "train"], choices=["flops", "speed", "train"])
    p.add_argument("--preset", default="S", help="VideoUformer preset for flops/speed (S or B)")
    p.add_argument("--flops-size", type=int, nargs=3, default=(7, 128, 128), metavar=("T", "H", "W"))
    p.add_argument("--time-size", type=int, nargs=3, default=(7, 64, 64), metavar=("T", "H", "W"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5, help="timing rounds (each runs every model once)")
    p.add_argument("--sample", help="video sample root (default: made in a temporary folder)")
    p.add_argument("--train-iters", type=int, default=200, help="iterations (the sample configs' schedule: 200)")
    p.add_argument("--out-md", help="also write the tables to this Markdown file")
    return p.parse_args(argv)


def build(preset: str, mode):
    from dense_adapters.nn.video_uformer import create_video_uformer

    import torch

    torch.manual_seed(0)
    return create_video_uformer(preset, skip_mode=mode).eval()


def flops_table(args) -> str:
    import torch
    from mmengine.analysis import FlopAnalyzer

    T, H, W = args.flops_size
    rows, base = [], None
    for name, mode in MODES:
        m = build(args.preset, mode)
        fa = FlopAnalyzer(m, torch.rand(1, T, 3, H, W))
        fa.unsupported_ops_warnings(False)
        fa.uncalled_modules_warnings(False)
        by = fa.by_module()
        total = fa.total()
        base = base or total
        rows.append(f"| VideoUformer-{args.preset} {name} | {sum(p.numel() for p in m.parameters()) / 1e6:.3f} M | "
                     f"{total / 1e9:.2f} G | {by['encoders'] / 1e9:.2f} G | {by['decoders'] / 1e9:.2f} G | "
                     f"{100 * (1 - total / base):.1f}% |")
        print(rows[-1], flush=True)
    head = (f"| model | params | FLOPs @{T}x{H}x{W} | encoder | decoder | saved |\n"
            "|---|---|---|---|---|---|\n")
    return head + "\n".join(rows)


def speed_table(args) -> str:
    import torch

    torch.set_num_threads(args.threads)
    T, H, W = args.time_size
    x = torch.rand(1, T, 3, H, W)
    models = {name: build(args.preset, mode) for name, mode in MODES}
    wall = {name: [] for name in models}
    cpu = {name: [] for name in models}
    with torch.no_grad():
        for m in models.values():
            m(x)  # warm-up
        for r in range(args.rounds):
            for name, m in models.items():
                t, c = time.perf_counter(), time.process_time()
                m(x)
                wall[name].append(time.perf_counter() - t)
                cpu[name].append(time.process_time() - c)
            print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{n} {v[-1] * 1e3:.0f} ms" for n, v in wall.items()),
                  flush=True)
    mw = {n: statistics.median(v) for n, v in wall.items()}
    mc = {n: statistics.median(v) for n, v in cpu.items()}
    head = (f"| model | wall ms / clip {T}x{H}x{W} | throughput (wall) | CPU-time ms / clip | throughput (CPU time) |\n"
            "|---|---|---|---|---|\n")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows = [f"| VideoUformer-{args.preset} {n} | {mw[n] * 1e3:.0f} | {mw['plain'] / mw[n]:.2f}x | {mc[n] * 1e3:.0f} | "
            f"{mc['plain'] / mc[n]:.2f}x |" for n in models]
    return head + "\n".join(rows) + (f"\n\nMedians of {args.rounds} interleaved rounds, batch 1, {args.threads} "
                                     f"thread(s); CPU time is the process's (user + system); load average at the "
                                     f"end: {load:.1f}.")


def train_once(cfg_name: str, mode, sample: str, work_dir: str, args) -> dict:
    from mmengine.config import Config
    from mmengine.runner import Runner

    cfg = Config.fromfile(osp.join(ROOT, "configs", cfg_name))
    n = args.train_iters
    cfg.merge_from_dict({
        "work_dir": work_dir, "model.generator.skip_mode": mode,
        "param_scheduler.1.end": n, "train_cfg.max_iters": n, "train_cfg.val_interval": n,
        "default_hooks.checkpoint.interval": 10 * n, "default_hooks.checkpoint.save_last": False,
        "default_hooks.checkpoint.save_best": None, "default_hooks.logger.interval": 50,
    })
    for name in ("train_dataloader", "val_dataloader", "test_dataloader"):
        cfg[name].dataset.data_root = sample
    runner = Runner.from_cfg(cfg)
    t = time.perf_counter()
    runner.train()
    out = {k.split("/")[-1]: v.current() for k, v in runner.message_hub.log_scalars.items() if k.startswith("val/")}
    out["params"] = sum(p.numel() for p in runner.model.parameters())
    out["seconds"] = time.perf_counter() - t
    return out


def noisy_scores(sample: str) -> tuple[float, float]:
    import numpy as np
    from mmengine.config import Config

    from dense_adapters.datasets.video import VideoFramesDataset
    from dense_adapters.evaluation.restoration import psnr, sequence_score, ssim

    cfg = Config.fromfile(osp.join(ROOT, "configs", CONFIGS[None]))
    ds = VideoFramesDataset(data_root=sample, split="val", whole_sequences=True, seed=0, test_mode=True,
                            pipeline=cfg.val_dataloader.dataset.pipeline)
    items = [ds[i] for i in range(len(ds))]
    return tuple(float(np.mean([sequence_score(f, it["inputs"] / 255.0, it["data_samples"].gt_img) for it in items]))
                 for f in (psnr, ssim))


def train_table(args) -> str:
    from mmengine.registry import DefaultScope

    from dense_adapters.datasets.samples.video import make_video_sample
    from dense_adapters.utils import register_all_modules

    register_all_modules()
    tmp = tempfile.mkdtemp(prefix="video_bench_")
    sample = args.sample or make_video_sample(tmp)
    with DefaultScope.overwrite_default_scope("mmseg"):
        p0, s0 = noisy_scores(sample)
    rows = [f"| noisy input (sigma 30) | - | {p0:.2f} dB | {s0:.4f} | - |"]
    for name, mode in MODES:
        r = train_once(CONFIGS[mode], mode, sample, osp.join(tmp, f"work_{mode}"), args)
        rows.append(f"| tiny VideoUformer {name} | {r['params'] / 1e3:.1f} k | **{r['PSNR']:.2f} dB** | "
                    f"{r['SSIM']:.4f} | {r['seconds']:.0f} s |")
        print(rows[-1], flush=True)
    head = (f"{args.train_iters} iterations each (configs/{SAMPLE_PLAIN}, its -skipat twin, and that with "
            "skip_mode='parametric'), seed 0; held out: the sample's 2 val sequences, whole, fixed noise.\n\n"
            "| model | params | val PSNR | val SSIM | train time |\n|---|---|---|---|---|\n")
    return head + "\n".join(rows)


def main(argv=None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    parts = {"flops": flops_table, "speed": speed_table, "train": train_table}
    out = []
    for part in args.parts:
        print(f"== {part}", flush=True)
        out.append(parts[part](args))
        print(out[-1], flush=True)
    if args.out_md:
        with open(args.out_md, "w") as f:
            f.write("\n\n".join(out) + "\n")
        print(f"wrote {args.out_md}")


if __name__ == "__main__":
    main()
