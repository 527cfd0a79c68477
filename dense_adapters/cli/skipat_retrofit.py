"""SkipAt retrofit of a pretrained ViT / Uformer: distil Phi from the model's own attention (docs/skipat_retrofit.md).

    python tools/skipat_retrofit.py --arch dinov2_vits14_reg4 --checkpoint dinov2_vits14_reg4_pretrain.pth \\
        --images unlabelled/ --skip 3-8 --iters 3000 --out work_dirs/retrofit_s14
    python tools/skipat_retrofit.py --arch dinov2_vitb14 --checkpoint W.pth --images imgs/ --skip auto --num-skip 4 ...
    torchrun --nproc-per-node 8 tools/skipat_retrofit.py ... --launcher pytorch --amp --workers 8
    python tools/skipat_retrofit.py ... --resume              # continue a stopped run exactly

Writes OUT/retrofit.pth (the student and its skips), OUT/report.json, OUT/retrofit.png; checkpoints and logs go to
OUT/work/. Load the result with ``dense_adapters.retrofit.build_from_retrofit(OUT/retrofit.pth)`` or a backbone
config with the same ``skip_layers`` and ``init_cfg=dict(type='Pretrained', checkpoint='OUT/retrofit.pth')``.
"""
from __future__ import annotations

import argparse
import json
from typing import Optional, Sequence

from ..errors import UserError
from ..nn import PRESETS, UFORMER_PRESETS
from ..retrofit.api import RetrofitConfig, retrofit
from ..retrofit.spec import spec_from_arch, spec_from_config
from .configs import read_config
from .core import add_cfg_options, run_cli


def _int_list(text: Optional[str], name: str) -> Optional[list[int]]:
    if text is None:
        return None
    try:
        return [int(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        raise UserError(f"{name} {text!r}: expected comma-separated block indices, e.g. 2,5,8,11") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("the pretrained model (one of --arch / --config)")
    g.add_argument("--arch", help=f"RegViT preset ({', '.join(sorted(PRESETS))}), uformer_"
                                  f"{{{','.join(sorted(UFORMER_PRESETS))}}}, or regvit/uformer with --cfg-options")
    g.add_argument("--config", help="mmengine config whose model.backbone is a dense_adapters.RegViT (or whose "
                                    "model.generator is a dense_adapters.Uformer); its init_cfg checkpoint is used "
                                    "unless --checkpoint is given")
    g.add_argument("--checkpoint", help="teacher weights (DINOv2 / timm / DeiT-III / RegViT; Uformer restorer)")
    g.add_argument("--source", default="auto", help="checkpoint format for load_pretrained (default auto)")
    g.add_argument("--trust-pickle", action="store_true", help="allow checkpoints that need code to unpickle")
    add_cfg_options(g, help="override constructor arguments of --arch, e.g. img_size=224 num_register_tokens=0",
                    deprecated=("--set",))
    d = p.add_argument_group("data")
    d.add_argument("--images", required=True, help="folder of unlabelled images (searched recursively)")
    d.add_argument("--val-images", help="held-out folder for the report (default: every 10th image of --images, "
                                        "at least 2, left out of training)")
    d.add_argument("--size", type=int, default=224, help="square crop side for training and evaluation (a "
                                                         "multiple of the patch size; default 224)")
    d.add_argument("--noise-sigma", type=float, default=25.0,
                   help="Uformer only: Gaussian noise sigma on the 0..255 scale added to the inputs (default 25)")
    s = p.add_argument_group("what to skip")
    s.add_argument("--skip", help="blocks to skip, 0-based: '3-8', '2,4,6', or 'auto' (with --num-skip: the blocks "
                                  "whose attention output has the highest CKA with the previous block's). Uformer: "
                                  "every decoder block, leave it out")
    s.add_argument("--num-skip", type=int, help="with --skip auto: how many blocks")
    s.add_argument("--skip-mode", default="parametric", choices=["parametric", "identity"],
                   help="parametric: distil SkipAt's Phi (default); identity: reuse unchanged, nothing to train "
                        "but LayerNorms/LayerScale with --train")
    t = p.add_argument_group("training")
    t.add_argument("--iters", type=int, default=3000,
                   help="total iterations: 1/3 stage 1 (teacher-forced per block), 2/3 stage 2 (end to end)")
    t.add_argument("--stage1-iters", type=int, help="override the stage-1 share of --iters")
    t.add_argument("--stage2-iters", type=int, help="override the stage-2 share of --iters")
    t.add_argument("--batch-size", type=int, default=32, help="images per process and iteration (default 32)")
    t.add_argument("--lr1", type=float, default=1e-3, help="peak AdamW learning rate of stage 1 (default 1e-3)")
    t.add_argument("--lr2", type=float, default=2e-4, help="peak AdamW learning rate of stage 2 (default 2e-4)")
    t.add_argument("--weight-decay", type=float, default=1e-4)
    t.add_argument("--train", default="", help="also train in stage 2, comma-separated: norms (LayerNorms from the "
                                               "first skipped block on), layerscale. Default: Phi only")
    t.add_argument("--feature-blocks", help="blocks matched in stage 2 (default: 4 evenly spaced incl. the last)")
    t.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA and CPU)")
    t.add_argument("--workers", type=int, default=2, help="dataloader worker processes per process (default 2)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--launcher", choices=["none", "pytorch"], default="none", help="pytorch: under torchrun")
    t.add_argument("--local_rank", "--local-rank", type=int, default=0, help=argparse.SUPPRESS)
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    t.add_argument("--log-interval", type=int, default=50)
    t.add_argument("--ckpt-interval", type=int, default=500)
    t.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    r = p.add_argument_group("report")
    r.add_argument("--no-bench", action="store_true", help="skip the side-by-side throughput measurement")
    r.add_argument("--bench-batch", type=int, default=8, help="batch of the throughput measurement (default 8)")
    r.add_argument("--bench-seconds", type=float, default=0.5, help="minimum seconds per timed repeat (default 0.5)")
    r.add_argument("--max-val-images", type=int, default=64)
    p.add_argument("--out", required=True, help="output folder: retrofit.pth, report.json, retrofit.png, work/")
    return p


def config_from_args(args: argparse.Namespace) -> RetrofitConfig:
    if bool(args.arch) == bool(args.config):
        raise UserError("give exactly one of --arch PRESET or --config CFG")
    checkpoint = args.checkpoint
    if args.config:
        if args.cfg_options:
            raise UserError("--cfg-options (--set) applies to --arch; edit the config instead")
        spec, cfg_ckpt = spec_from_config(read_config(args.config))
        checkpoint = checkpoint or cfg_ckpt
    else:
        spec = spec_from_arch(args.arch, dict(args.cfg_options))
    if spec.family == "regvit" and args.skip is None:
        raise UserError("give --skip: blocks like 3-8 (SkipAt's choice for 12 blocks) or 'auto' with --num-skip K")
    n1 = args.stage1_iters if args.stage1_iters is not None else (
        args.iters // 3 if args.stage2_iters is None else max(0, args.iters - args.stage2_iters))
    n2 = args.stage2_iters if args.stage2_iters is not None else max(0, args.iters - n1)
    train = tuple(t for t in args.train.replace(" ", "").split(",") if t)
    return RetrofitConfig(
        spec=spec, images=args.images, out=args.out, checkpoint=checkpoint, source=args.source,
        trust_pickle=args.trust_pickle, val_images=args.val_images, skip=args.skip or "auto", num_skip=args.num_skip,
        skip_mode=args.skip_mode, size=args.size, batch_size=args.batch_size, stage1_iters=n1, stage2_iters=n2,
        lr1=args.lr1, lr2=args.lr2, weight_decay=args.weight_decay, train=train,
        feature_blocks=_int_list(args.feature_blocks, "--feature-blocks"), noise_sigma=args.noise_sigma / 255.0,
        amp=args.amp, num_workers=args.workers, seed=args.seed, launcher=args.launcher, resume=args.resume,
        log_interval=args.log_interval, ckpt_interval=args.ckpt_interval, bench=not args.no_bench,
        bench_batch=args.bench_batch, bench_min_time=args.bench_seconds, max_val_images=args.max_val_images,
        device=args.device)


def summary(report: dict) -> str:
    """A few lines for the terminal: similarity before/after, FLOPs, speed."""
    sims = report["similarity"]
    lines = [f"skip {report['skip_layers']} ({report['skip_mode']}) of {report['model']}; held-out final patch "
             "cosine to the teacher: " + ", ".join(f"{k} {v['final_patch_cos']:.4f}" for k, v in sims.items())]
    fl, tp = report.get("flops") or {}, report.get("throughput")
    if fl.get("ratio"):
        lines.append(f"GMACs/img {fl['teacher_gmacs']:.3f} -> {fl['student_gmacs']:.3f} (x{fl['ratio']:.3f})")
    if tp:
        lines.append(f"throughput ({tp['device']}, {tp['dtype']}, batch {tp['batch']}): teacher "
                     f"{tp['teacher_img_per_s']:.1f} img/s, student {tp['student_img_per_s']:.1f} img/s, "
                     f"x{tp['speedup']:.3f}")
    return "\n".join(lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    """Run, print the summary; returns the report (empty on ranks > 0)."""
    report = retrofit(config_from_args(args))
    if report:
        print(summary(report))
        print(f"wrote {args.out}/retrofit.pth, report.json, retrofit.png")
        with open(f"{args.out}/report.json") as f:  # the file is the contract: make sure it parses
            json.load(f)
    return report


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    return run_cli(lambda: run(args))


if __name__ == "__main__":
    import sys

    sys.exit(main())
