"""Mask2Former next to UPerNet, measured: one ADE20K training step on the CPU, wall and CPU time, peak memory.

    python benchmarks/mask2former.py                                 # the configs' training crops, 8 classes/img
    python benchmarks/mask2former.py --crop 224 --repeats 3
    python benchmarks/mask2former.py --crop 224 --labels random      # uniform labels: all 150 classes per image
    python benchmarks/mask2former.py --configs configs/ade20k_dinov3_vits16_m2f.py --out-json m2f.json

A step is ``model.train_step`` (data preprocessor, forward, losses, backward, AdamW with the config's optimizer
wrapper) on a batch of random images and labels (``benchmarks/cases.py:seg_case``, random weights). The configs run
interleaved round by round in one process, so background load hits them alike; besides wall time the process's CPU
time (user + system) is reported, which a shared machine inflates much less. Memory: growth of the peak resident
set over the first step (gradients, AdamW state and activations; the weights were allocated before), Linux only.
``dense-adapters-benchmark --task seg --seg-classes 8`` times the same steps with the harness (wall time, IQR).
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import statistics
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = ("ade20k_regvit_upernet.py", "ade20k_dinov2_vits14_reg4_m2f.py", "ade20k_dinov2_vits14_reg4_m2f_frozen.py")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", nargs="+", default=[osp.join(ROOT, "configs", c) for c in CONFIGS])
    p.add_argument("--crop", type=int, help="square crop for every config (default: each config's training crop)")
    p.add_argument("--batch", type=int, default=2, help="images per step (the recipes' per-GPU batch)")
    p.add_argument("--labels", choices=["regions", "random"], default="regions",
                   help="regions: --classes classes per image; random: uniform over all classes")
    p.add_argument("--classes", type=int, default=8, help="classes per image with --labels regions")
    p.add_argument("--repeats", type=int, default=2, help="timed rounds after the warm-up step")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out-json")
    return p.parse_args(argv)


def run(args) -> dict:
    import torch

    sys.path.insert(0, ROOT)  # benchmarks/ is a folder of the checkout, not part of the package
    from benchmarks import cases as C
    from dense_adapters.benchmark import peak_memory_mib

    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    classes = args.classes if args.labels == "regions" else None
    built = {}
    for cfg in args.configs:
        w = C.seg_case(osp.basename(cfg), cfg, args.batch, crop=args.crop, classes=classes).build(device)
        mem = peak_memory_mib(w.step, device)  # also the warm-up step
        params = sum(p.numel() for p in w.model.parameters())
        trainable = sum(p.numel() for p in w.model.parameters() if p.requires_grad)
        crop = w.model.data_preprocessor.size[0]
        built[cfg] = dict(step=w.step, mem_mib=mem, params_m=params / 1e6, trainable_m=trainable / 1e6, crop=crop,
                          wall=[], cpu=[])
        print(f"built {osp.basename(cfg)} at {crop}: first step +{mem:.0f} MiB", flush=True)
    for r in range(args.repeats):
        for cfg, b in built.items():
            t, c = time.perf_counter(), time.process_time()
            b["step"]()
            b["wall"].append(time.perf_counter() - t)
            b["cpu"].append(time.process_time() - c)
            print(f"round {r + 1}/{args.repeats} {osp.basename(cfg)}: wall {b['wall'][-1]:.1f} s, "
                  f"CPU {b['cpu'][-1]:.1f} s", flush=True)
    rows = [dict(config=osp.basename(cfg), crop=b["crop"], batch=args.batch, labels=args.labels,
                 classes=classes, params_m=round(b["params_m"], 2), trainable_m=round(b["trainable_m"], 2),
                 wall_s=statistics.median(b["wall"]), cpu_s=statistics.median(b["cpu"]), wall=b["wall"], cpu=b["cpu"],
                 mem_mib=b["mem_mib"]) for cfg, b in built.items()]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return dict(rows=rows, threads=args.threads, repeats=args.repeats, torch=torch.__version__, load_avg_end=load)


def markdown(report: dict) -> str:
    out = ["| config | crop | parameters (trainable) | CPU s / step | wall s / step | peak memory +MiB |",
           "|---|---|---|---|---|---|"]
    for r in report["rows"]:
        mem = "-" if r["mem_mib"] is None else f"{r['mem_mib']:.0f}"
        out.append(f"| `{r['config']}` | {r['crop']} | {r['params_m']:.1f}M ({r['trainable_m']:.1f}M) | "
                   f"{r['cpu_s']:.1f} | {r['wall_s']:.1f} | {mem} |")
    load = report["load_avg_end"]
    out.append(f"\nMedians of {report['repeats']} interleaved rounds after one warm-up step, batch "
               f"{report['rows'][0]['batch']}, {report['threads']} thread(s), labels: {report['rows'][0]['labels']}"
               + (f" ({report['rows'][0]['classes']} classes/image)" if report['rows'][0]['classes'] else "")
               + (f"; load average at the end {load:.1f}" if load is not None else "") + ".")
    return "\n".join(out)


def main(argv=None) -> None:
    args = parse_args(argv)
    report = run(args)
    print(markdown(report))
    if args.out_json:
        with open(args.out_json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
