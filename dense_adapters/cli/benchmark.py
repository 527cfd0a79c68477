"""Speed side by side: our RegViT vs timm's and mmseg's ViT, SkipAt vs attention, ADE20K train steps, LOST, Uformer.

    python tools/benchmark.py --suite quick                       # tiny models, seconds (CI)
    python tools/benchmark.py --suite cpu --out-json docs/benchmarks_cpu.json --out-md docs/benchmarks_cpu.md
    python tools/benchmark.py --suite gpu --out-json gpu.json --out-md gpu.md       # on a CUDA machine
    python tools/benchmark.py --task backbone --arch small base --patch 16 --sizes 224 512 --batch 8 \\
        --impls ours timm mmseg --skipat both --modes forward train --dtypes fp32 bf16 --compile both
    python tools/benchmark.py --task seg --configs configs/ade20k_regvit_upernet.py \\
        configs/ade20k_regvit_skipat_upernet.py --batch 2
    python tools/benchmark.py --task lost --sizes 518 ;  python tools/benchmark.py --task uformer --sizes 256

Cases of a group are timed interleaved (A B C A B C ...) after warm-up; step time = median over --repeats, spread =
IQR. Images/s = batch / median step time. Ratios compare throughputs inside a group (ours/timm, skipat/ours, ...).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import os.path as osp
import platform
import sys
from typing import Optional

import torch

from .. import benchmark as B
from ..errors import UserError
from .core import run_cli

SEG_CONFIGS = ("configs/ade20k_regvit.py", "configs/ade20k_regvit_upernet.py",
               "configs/ade20k_regvit_skipat_upernet.py")
SEG_LABELS = {"ade20k_regvit": "linear", "ade20k_regvit_upernet": "upernet",
              "ade20k_regvit_skipat_upernet": "skipat"}
SUITES = ("quick", "cpu", "gpu")
# per suite: warm-up steps, repeats, minimum seconds per timed run, threads (None: torch's default)
SUITE_TIMING = {"quick": (1, 1, 0.0, 1), "cpu": (2, 7, 1.0, None), "gpu": (5, 7, 0.5, None)}


# ------------------------------------------------------------------------------------------------ groups
def backbone_groups(archs, patches, sizes, batch, registers, impls, skipat, modes, dtypes, compile_) -> list:
    """One group per (arch, patch, registers, size, mode, dtype): the peers, SkipAt and compiled variants."""
    groups = []
    for arch in archs:
        for patch in patches:
            for reg in registers:
                for size in sizes:
                    if size % patch:
                        print(f"note: {size} px is not a multiple of patch {patch}: skipped (use e.g. 518 for /14)")
                        continue
                    for mode in modes:
                        for dtype in dtypes:
                            groups.append(_backbone_group(arch, patch, reg, size, batch, mode, dtype, impls,
                                                          skipat, compile_))
    return groups


def _backbone_group(arch, patch, reg, size, batch, mode, dtype, impls, skipat, compile_) -> "B.Group":
    kw = dict(arch=arch, patch=patch, size=size, batch=batch, mode=mode, registers=reg, dtype=dtype)
    cases, ratios = [], []
    if skipat != "only":
        for impl in impls:
            if impl == "mmseg" and reg:
                continue  # mmseg's ViT has no registers
            if compile_ != "only":
                cases.append(B.backbone_case(impl, impl, **kw))
            if compile_ in ("both", "only"):
                cases.append(B.backbone_case(f"{impl}+compile", impl, compile=True, **kw))
    if skipat in ("both", "only"):
        if compile_ != "only":
            cases.append(B.backbone_case("skipat", "ours", skip=True, **kw))
        if compile_ in ("both", "only"):
            cases.append(B.backbone_case("skipat+compile", "ours", skip=True, compile=True, **kw))
    labels = [c.label for c in cases]
    for suffix in ("", "+compile"):
        for num, den in (("ours", "timm"), ("ours", "mmseg"), ("skipat", "ours")):
            if num + suffix in labels and den + suffix in labels:
                ratios.append((num + suffix, den + suffix))
        for impl in ("ours", "timm", "mmseg", "skipat"):
            if suffix and impl in labels and impl + suffix in labels:
                ratios.append((impl + suffix, impl))
    name = f"{B.model_name(arch, patch, reg)} {size} bs{batch} {mode} {dtype}"
    return B.Group(name, cases, ratios)


def seg_groups(configs, batch, dtypes, compile_, crop=None, tiny=False) -> list:
    groups = []
    for dtype in dtypes:
        cases = []
        for cfg in configs:
            label = SEG_LABELS.get(osp.splitext(osp.basename(cfg))[0], osp.splitext(osp.basename(cfg))[0])
            if compile_ != "only":
                cases.append(B.seg_case(label, cfg, batch, dtype, False, tiny, crop))
            if compile_ in ("both", "only"):
                cases.append(B.seg_case(label + "+compile", cfg, batch, dtype, True, tiny, crop))
        labels = [c.label for c in cases]
        ratios = [(n, d) for n, d in (("skipat", "upernet"), ("skipat+compile", "upernet+compile"))
                  if n in labels and d in labels]
        groups.append(B.Group(f"ADE20K train step {crop or 'crop'} bs{batch} {dtype}", cases, ratios,
                              warmup=1 if not tiny else None, repeats=3 if not tiny else None))
    return groups


def dtype_group(arch, patch, size, batch, mode) -> "B.Group":
    """fp32 vs bf16 autocast for our ViT: is mixed precision worth it on this device?"""
    kw = dict(arch=arch, patch=patch, size=size, batch=batch, mode=mode)
    return B.Group(f"{B.model_name(arch, patch)} {size} bs{batch} {mode} fp32 vs bf16",
                   [B.backbone_case("fp32", "ours", **kw), B.backbone_case("bf16", "ours", dtype="bf16", **kw)],
                   [("bf16", "fp32")])


def lost_group(arch, patch, size, registers=4, tiny=False) -> "B.Group":
    return B.Group(f"LOST {B.model_name(arch, patch, registers)} {size}",
                   [B.lost_case("keys", arch, patch, size, registers, with_lost=False),
                    B.lost_case("keys+lost", arch, patch, size, registers, with_lost=True)],
                   [("keys+lost", "keys")])


def uformer_group(preset, size, batch, mode, tiny=False) -> "B.Group":
    return B.Group(f"Uformer-{preset} {size} bs{batch} {mode}",
                   [B.uformer_case("uformer", preset, size, batch, mode, False, tiny=tiny),
                    B.uformer_case("skipat", preset, size, batch, mode, True, tiny=tiny)],
                   [("skipat", "uformer")])


def suite_groups(suite: str, cuda: bool) -> list:
    if suite == "quick":
        t = dict(archs=["tiny-test"], patches=[16], sizes=[64], batch=2, registers=[0], impls=B.IMPLS,
                 skipat="both", dtypes=["fp32"], compile_="off")
        return (backbone_groups(modes=["forward", "train"], **t)
                + [dtype_group("tiny-test", 16, 64, 2, "train")]
                + seg_groups(SEG_CONFIGS, 2, ["fp32"], "off", crop=56, tiny=True)
                + [lost_group("tiny-test", 16, 64), uformer_group("T", 32, 1, "train", tiny=True)])
    if suite == "cpu":  # what docs/benchmarks.md publishes; about 20 minutes on 1 core
        g = []
        g += backbone_groups(["small"], [16], [224], 4, [0], B.IMPLS, "both", ["forward", "train"], ["fp32"], "off")
        g += backbone_groups(["base"], [16], [224], 2, [0], B.IMPLS, "both", ["forward"], ["fp32"], "off")
        g += backbone_groups(["small", "base"], [16], [512], 1, [0], B.IMPLS, "both", ["forward"], ["fp32"], "off")
        g[-1].repeats = 5  # ViT-B/16 at 512: about 5 s a step on one core
        g += backbone_groups(["small"], [14], [518], 1, [4], B.IMPLS, "both", ["forward"], ["fp32"], "off")
        g += backbone_groups(["small"], [16], [224], 4, [0], ["ours"], "off", ["forward"], ["fp32"], "both")
        g += [dtype_group("small", 16, 224, 4, "train"), dtype_group("small", 16, 224, 4, "forward")]
        g += seg_groups(SEG_CONFIGS, 2, ["fp32"], "off")
        g += [lost_group("small", 14, 518), uformer_group("T", 256, 1, "forward"),
              uformer_group("T", 256, 1, "train")]
        return g
    if suite == "gpu":
        g = []
        for arch, bs in (("small", 64), ("base", 32)):
            g += backbone_groups([arch], [16], [224], bs, [0], B.IMPLS, "both", ["forward", "train"],
                                 ["fp32", "bf16"], "both")
            g += backbone_groups([arch], [16], [512], bs // 4, [0], B.IMPLS, "both", ["forward", "train"],
                                 ["bf16"], "both")
            g += backbone_groups([arch], [14], [518], bs // 4, [4], B.IMPLS, "both", ["forward", "train"],
                                 ["bf16"], "off")
        g += seg_groups(SEG_CONFIGS, 8, ["fp32", "bf16"], "off")
        g += [lost_group("small", 14, 518), uformer_group("B", 256, 4, "train")]
        return g
    raise UserError(f"unknown suite {suite!r}: use one of {SUITES}")


# ----------------------------------------------------------------------------------------------- reports
def machine_info(device: torch.device) -> dict:
    import mmengine
    import timm

    from .. import registry  # noqa: F401  (mmseg imports under mmcv-lite only after this)
    import mmcv
    import mmseg

    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    info = dict(date=datetime.datetime.now().isoformat(timespec="seconds"), cpu=cpu, cpu_count=os.cpu_count(),
                torch_threads=torch.get_num_threads(), device=str(device), python=platform.python_version(),
                torch=torch.__version__, timm=timm.__version__, mmseg=mmseg.__version__,
                mmengine=mmengine.__version__, mmcv=mmcv.__version__,
                load_avg_start=list(os.getloadavg()) if hasattr(os, "getloadavg") else None)
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


COLUMNS = [("group", "group"), ("case", "label"), ("model", "model"), ("input", "size"), ("batch", "batch"),
           ("mode", "mode"), ("dtype", "dtype"), ("compile", "compile"), ("params M", "params_m"),
           ("GMACs/img", "gmacs_per_img"), ("img/s", "img_per_s"), ("step ms", "step_ms"), ("IQR ms", "iqr_ms"),
           ("mem MiB", "mem_mib")]


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"# Benchmark ({report['suite'] or report['task']}, {m['device']})", "",
             f"- date {m['date']}; CPU {m['cpu']} ({m['cpu_count']} logical CPUs, torch threads {m['torch_threads']})"
             + (f"; GPU {m['gpu']}" if m.get("gpu") else ""),
             f"- python {m['python']}, torch {m['torch']}, timm {m['timm']}, mmseg {m['mmseg']}, "
             f"mmengine {m['mmengine']}, mmcv {m['mmcv']}",
             f"- load average at start / end: {m.get('load_avg_start')} / {m.get('load_avg_end')}",
             f"- warm-up {report['warmup']}, repeats {report['repeats']} (median, IQR), timed runs >= "
             f"{report['min_time']} s, cases of a group interleaved", "", "## Results", "",
             "| " + " | ".join(c for c, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in report["rows"]:
        lines.append("| " + " | ".join(_fmt(r.get(k)) for _, k in COLUMNS) + " |")
    lines += ["", "## Ratios (throughput, same group, measured interleaved)", "",
              "Median over repeats of the ratio within each repeat (IQR), and the ratio of the median throughputs.",
              "", "| group | ratio | median paired | IQR | of medians |", "|---|---|---|---|---|"]
    for q in report["ratios"]:
        lines.append(f"| {q['group']} | {q['ratio']} | {q['value']:.3f} | {q['iqr']:.3f} | {q['of_medians']:.3f} |")
    if report.get("errors"):
        lines += ["", "## Failed groups", ""] + [f"- {e['group']}: {e['error']}" for e in report["errors"]]
    return "\n".join(lines) + "\n"


def print_table(rows: list) -> None:
    keys = [("case", "label"), ("model", "model"), ("input", "size"), ("bs", "batch"), ("mode", "mode"),
            ("dtype", "dtype"), ("GMACs", "gmacs_per_img"), ("img/s", "img_per_s"), ("step ms", "step_ms"),
            ("IQR", "iqr_ms"), ("MiB", "mem_mib")]
    table = [[h for h, _ in keys]] + [[_fmt(r.get(k)) for _, k in keys] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(keys))]
    for row in table:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths)))


# ---------------------------------------------------------------------------------------------------- CLI
def parse_args(argv: Optional[list] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="dense-adapters-benchmark", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", choices=SUITES, help="a preset set of groups (else --task with its options)")
    p.add_argument("--task", choices=["backbone", "seg", "lost", "uformer"], default="backbone")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1 ...")
    p.add_argument("--arch", nargs="+", default=["small"], help="ViT widths: tiny small base large (tiny-test)")
    p.add_argument("--patch", nargs="+", type=int, default=[16])
    p.add_argument("--sizes", nargs="+", type=int, default=[224])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--registers", nargs="+", type=int, default=[0])
    p.add_argument("--impls", nargs="+", choices=B.IMPLS, default=list(B.IMPLS))
    p.add_argument("--skipat", choices=["off", "both", "only"], default="both",
                   help="add our ViT with SkipAt in blocks 3..8 (paper default)")
    p.add_argument("--modes", nargs="+", choices=B.MODES, default=["forward"])
    p.add_argument("--dtypes", nargs="+", choices=B.DTYPES, default=["fp32"], help="bf16 = autocast")
    p.add_argument("--compile", choices=["off", "both", "only"], default="off", help="torch.compile variants")
    p.add_argument("--configs", nargs="+", default=list(SEG_CONFIGS), help="--task seg: segmentation configs")
    p.add_argument("--crop", type=int, help="--task seg: crop size (default: the config's)")
    p.add_argument("--presets", nargs="+", default=["T"], help="--task uformer: Uformer presets")
    p.add_argument("--warmup", type=int, help="warm-up steps per case (default: per suite; 2)")
    p.add_argument("--repeats", type=int, help="timed runs per case (default: per suite; 5)")
    p.add_argument("--min-time", type=float, help="minimum seconds per timed run (default: per suite; 1.0)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's; 1 on an oversubscribed box)")
    p.add_argument("--no-flops", action="store_true", help="skip the FLOP count (a jit trace per case)")
    p.add_argument("--out-json", help="write results and machine info as JSON")
    p.add_argument("--out-md", help="write a markdown report")
    return p.parse_args(argv)


def task_groups(a: argparse.Namespace) -> list:
    if a.task == "backbone":
        return backbone_groups(a.arch, a.patch, a.sizes, a.batch, a.registers, a.impls, a.skipat, a.modes,
                               a.dtypes, a.compile)
    if a.task == "seg":
        return seg_groups(a.configs, a.batch, a.dtypes, a.compile, a.crop)
    if a.task == "lost":
        return [lost_group(arch, patch, size, max(a.registers)) for arch in a.arch for patch in a.patch
                for size in a.sizes]
    return [uformer_group(p, s, a.batch, m) for p in a.presets for s in a.sizes for m in a.modes]


def run(a: argparse.Namespace) -> dict:
    """Run the groups; returns the report (also written with --out-json / --out-md)."""
    dev = "cuda" if a.device == "auto" and torch.cuda.is_available() else ("cpu" if a.device == "auto" else a.device)
    device = torch.device(dev)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {a.device} asked, but CUDA is not available here: use --device cpu")
    if a.suite == "gpu" and device.type != "cuda":
        raise UserError("--suite gpu needs a CUDA device: use --suite cpu here")
    warmup, repeats, min_time, threads = SUITE_TIMING[a.suite or "cpu"]
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
    groups = suite_groups(a.suite, device.type == "cuda") if a.suite else task_groups(a)
    info = machine_info(device)
    report = dict(suite=a.suite, task=None if a.suite else a.task, warmup=warmup, repeats=repeats,
                  min_time=min_time, machine=info, rows=[], ratios=[], errors=[])
    for g in groups:
        try:
            r = B.run_group(g, device, warmup, repeats, min_time, flops=not a.no_flops)
        except Exception as e:  # one failing group must not lose the others' numbers
            msg = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            print(f"[{g.name}] FAILED: {msg}")
            report["errors"].append(dict(group=g.name, error=msg))
            continue
        report["rows"] += r
        report["ratios"] += B.group_ratios(g, r)
        info["load_avg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
        write_reports(report, a.out_json, a.out_md)  # after every group: a long run keeps what it measured
    print()
    print_table(report["rows"])
    for q in report["ratios"]:
        print(f"{q['group']:>45}  {q['ratio']:>24}  {q['value']:.3f} (IQR {q['iqr']:.3f}, of medians "
              f"{q['of_medians']:.3f})")
    for e in report["errors"]:
        print(f"FAILED {e['group']}: {e['error']}")
    return report


def write_reports(report: dict, out_json: Optional[str], out_md: Optional[str]) -> None:
    if out_json:
        with open(out_json, "w") as f:
            json.dump(report, f, indent=1)
    if out_md:
        with open(out_md, "w") as f:
            f.write(markdown(report))


def main(argv: Optional[list] = None) -> int:
    args = parse_args(argv)
    return run_cli(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
