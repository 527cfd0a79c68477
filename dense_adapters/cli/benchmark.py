"""Speed side by side: our RegViT vs timm's and mmseg's ViT, SkipAt vs attention, ADE20K train steps, LOST, Uformer.

    python tools/benchmark.py --suite quick                       # tiny models, seconds (CI)
    python tools/benchmark.py --suite cpu --out-json docs/benchmarks_cpu.json --out-md docs/benchmarks_cpu.md
    python tools/benchmark.py --suite gpu --out-json gpu.json --out-md gpu.md       # on a CUDA machine
    python tools/benchmark.py --suite gpu-check      # the timed groups of scripts/gpu_check.sh (CUDA)
    python tools/benchmark.py --task backbone --arch small base --patch 16 --sizes 224 512 --batch 8 \\
        --impls ours timm mmseg --skipat both --modes forward train --dtypes fp32 bf16 --compile both
    python tools/benchmark.py --task seg --configs configs/ade20k_regvit_upernet.py \\
        configs/ade20k_regvit_skipat_upernet.py --batch 2
    python tools/benchmark.py --task seg --configs configs/ade20k_regvit_upernet.py \
        configs/ade20k_dinov2_vits14_reg4_m2f.py --batch 2 --seg-classes 8     # Mask2Former (docs/mask2former.md)
    python tools/benchmark.py --task lost --sizes 518 ;  python tools/benchmark.py --task uformer --sizes 256

Cases of a group are timed interleaved (A B C A B C ...) after warm-up; step time = median over --repeats, spread =
IQR. Images/s = batch / median step time. Ratios compare throughputs inside a group (ours/timm, skipat/ours, ...).
"""
from __future__ import annotations

import argparse
import importlib.util
import os.path as osp
import sys
from types import ModuleType
from typing import Optional

import torch

from .. import benchmark as B
from ..errors import UserError
from .configs import mim_dir
from .core import repo_root, run_cli

_MODULE = "dense_adapters_benchmarks"  # the name the checkout's benchmarks/ is imported under


def default_benchmarks_dir() -> str:
    """``benchmarks/`` of the checkout (the current folder's, else the package's), else the installed copy."""
    here = osp.join(repo_root(), "benchmarks")
    if osp.isfile(osp.join(here, "__init__.py")):
        return here
    return mim_dir("benchmarks") or here


def load_benchmarks(folder: Optional[str] = None) -> ModuleType:
    """Import the cases and suites of ``folder`` (default: :func:`default_benchmarks_dir`) as a package."""
    folder = osp.abspath(folder or default_benchmarks_dir())
    init = osp.join(folder, "__init__.py")
    if not osp.isfile(init):
        raise UserError(f"no benchmark cases in {folder}: the suites live in the repository's benchmarks/ folder "
                        "(a wheel carries a copy); run from a clone or pass --benchmarks-dir DIR")
    mod = sys.modules.get(_MODULE)
    if mod is not None and osp.dirname(osp.abspath(mod.__file__)) == folder:
        return mod
    spec = importlib.util.spec_from_file_location(_MODULE, init, submodule_search_locations=[folder])
    mod = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE] = mod
    for sub in [k for k in sys.modules if k.startswith(_MODULE + ".")]:
        del sys.modules[sub]
    spec.loader.exec_module(mod)
    return mod


def parse_args(argv: Optional[list] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--benchmarks-dir")
    bench = load_benchmarks(pre.parse_known_args(argv)[0].benchmarks_dir)
    C, S = bench.cases, bench.suites
    p.add_argument("--benchmarks-dir", help="the folder of cases and suites (default: benchmarks/ of the checkout, "
                                           "else the installed package's copy)")
    p.add_argument("--suite", choices=S.SUITES, help="a preset set of groups (else --task with its options)")
    p.add_argument("--task", choices=["backbone", "seg", "lost", "uformer"], default="backbone")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1 ...")
    p.add_argument("--arch", nargs="+", default=["small"], help="ViT widths: tiny small base large (tiny-test)")
    p.add_argument("--patch", nargs="+", type=int, default=[16])
    p.add_argument("--sizes", nargs="+", type=int, default=[224])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--registers", nargs="+", type=int, default=[0])
    p.add_argument("--impls", nargs="+", choices=C.IMPLS, default=list(C.IMPLS))
    p.add_argument("--skipat", choices=["off", "both", "only"], default="both",
                   help="add our ViT with SkipAt in blocks 3..8 (paper default)")
    p.add_argument("--modes", nargs="+", choices=B.MODES, default=["forward"])
    p.add_argument("--dtypes", nargs="+", choices=B.DTYPES, default=["fp32"], help="bf16 = autocast")
    p.add_argument("--compile", choices=["off", "both", "only"], default="off", help="torch.compile variants")
    p.add_argument("--configs", nargs="+", default=list(S.SEG_CONFIGS),
                   help="--task seg: segmentation configs (files or dense_adapters::NAME.py)")
    p.add_argument("--crop", type=int, help="--task seg: crop size (default: the config's)")
    p.add_argument("--seg-classes", type=int, metavar="K",
                   help="--task seg: labels with K classes per image (random regions; what Mask2Former's matching "
                        "sees on real crops) instead of uniform random labels over all classes")
    p.add_argument("--presets", nargs="+", default=["T"], help="--task uformer: Uformer presets")
    p.add_argument("--warmup", type=int, help="warm-up steps per case (default: per suite; 2)")
    p.add_argument("--repeats", type=int, help="timed runs per case (default: per suite; 5)")
    p.add_argument("--min-time", type=float, help="minimum seconds per timed run (default: per suite; 1.0)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's; 1 on an oversubscribed box)")
    p.add_argument("--no-flops", action="store_true", help="skip the FLOP count (a jit trace per case)")
    p.add_argument("--out-json", help="write results and machine info as JSON")
    p.add_argument("--out-md", help="write a markdown report")
    return p.parse_args(argv)


def run(a: argparse.Namespace) -> dict:
    """Run the groups; returns the report (also written with --out-json / --out-md)."""
    dev = "cuda" if a.device == "auto" and torch.cuda.is_available() else ("cpu" if a.device == "auto" else a.device)
    device = torch.device(dev)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {a.device} asked, but CUDA is not available here: use --device cpu")
    if a.suite in ("gpu", "gpu-check") and device.type != "cuda":
        raise UserError(f"--suite {a.suite} needs a CUDA device: use --suite cpu here (or scripts/gpu_check.sh "
                        "--dry-run for the GPU check at tiny sizes)")
    suites = load_benchmarks(a.benchmarks_dir).suites
    warmup, repeats, min_time, threads = suites.SUITE_TIMING[a.suite or "cpu"]
    warmup = a.warmup if a.warmup is not None else warmup
    repeats = a.repeats if a.repeats is not None else repeats
    min_time = a.min_time if a.min_time is not None else min_time
    threads = a.threads if a.threads is not None else threads
    if repeats < 1 or warmup < 1:
        raise UserError("--repeats and --warmup must be >= 1")
    if threads:
        torch.set_num_threads(threads)
    for d in (a.out_json, a.out_md):
        if d and osp.dirname(d) and not osp.isdir(osp.dirname(d)):
            raise UserError(f"output folder does not exist: {osp.dirname(d)}: create it or pick another path")
    groups = suites.suite_groups(a.suite, device.type == "cuda") if a.suite else suites.task_groups(a)
    info = B.machine_info(device)
    report = dict(suite=a.suite, task=None if a.suite else a.task, warmup=warmup, repeats=repeats,
                  min_time=min_time, machine=info, rows=[], ratios=[], errors=[])
    B.run_groups(groups, device, report, warmup, repeats, min_time, flops=not a.no_flops, out_json=a.out_json,
                 out_md=a.out_md)
    print()
    B.print_table(report["rows"])
    for q in report["ratios"]:
        print(f"{q['group']:>45}  {q['ratio']:>24}  {q['value']:.3f} (IQR {q['iqr']:.3f}, of medians "
              f"{q['of_medians']:.3f})")
    for e in report["errors"]:
        print(f"FAILED {e['group']}: {e['error']}")
    return report


def main(argv: Optional[list] = None) -> int:
    return run_cli(lambda: run(parse_args(argv)))  # parsing loads benchmarks/: its errors are one line too


if __name__ == "__main__":
    sys.exit(main())
