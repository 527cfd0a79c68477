"""The retrofit's report: FLOPs, throughput of teacher and student measured side by side, and the PNG."""
from __future__ import annotations

import os
from typing import Optional

import torch
from torch import nn

from .. import benchmark as bench


def gmacs(model: nn.Module, x: torch.Tensor) -> Optional[float]:
    """GMACs per image (the 'GFLOPs' of ViT papers; fused attention counted), None if the trace fails."""
    try:
        return bench.count_gmacs(model, (x[:1],))
    except Exception:  # a tracing failure must not lose the trained model
        return None


def _case(label: str, model: nn.Module, x: torch.Tensor, dtype: str, name: str) -> bench.Case:
    def build(device: torch.device) -> bench.Workload:
        m = model.to(device)
        xs = x.to(device)
        return bench.Workload(m, bench.make_step(m, m, xs, "forward", dtype, device), xs.shape[0])

    return bench.Case(label, name, f"{x.shape[-2]}x{x.shape[-1]}", x.shape[0], "forward", dtype, build=build)


def throughput(teacher: nn.Module, student: nn.Module, x: torch.Tensor, device: torch.device, dtype: str = "fp32",
               repeats: int = 5, min_time: float = 0.5, log=print) -> dict:
    """Forward img/s of teacher and student on the same batch, timed interleaved (benchmark.run_group), and the
    student/teacher ratio as the median of per-repeat ratios."""
    group = bench.Group("retrofit", [_case("teacher", teacher, x, dtype, "teacher"),
                                     _case("student", student, x, dtype, "student")],
                        ratios=[("student", "teacher")])
    rows = bench.run_group(group, device, warmup=2, repeats=repeats, min_time=min_time, flops=False, log=log)
    ratio = bench.group_ratios(group, rows)[0]
    by = {r["label"]: r for r in rows}
    return dict(device=device.type, dtype=dtype, batch=x.shape[0], size=list(x.shape[-2:]),
                teacher_img_per_s=by["teacher"]["img_per_s"], student_img_per_s=by["student"]["img_per_s"],
                speedup=ratio["value"], speedup_iqr=ratio["iqr"], repeats=repeats,
                threads=torch.get_num_threads() if device.type == "cpu" else None)


def plot_report(report: dict, path: str) -> str:
    """Per-block patch (and cls) cosine to the teacher before/after, and a FLOPs/throughput panel."""
    from matplotlib.figure import Figure

    sims = report["similarity"]
    fig = Figure(figsize=(10, 3.6))
    ax, ax2 = fig.subplots(1, 2, gridspec_kw=dict(width_ratios=[2.2, 1]))
    styles = {"untrained": ("tab:gray", "Phi untrained"), "identity": ("tab:orange", "identity reuse"),
              "stage1": ("tab:blue", "after stage 1"), "retrofit": ("tab:green", "retrofitted")}
    blocks = None
    for key, (color, label) in styles.items():
        s = sims.get(key)
        if not s:
            continue
        blocks = s["blocks"]
        xs = range(len(blocks))
        ax.plot(xs, s["patch_cos"], "-o", ms=3, color=color, label=f"{label}: final {s['final_patch_cos']:.3f}")
        if s.get("cls_cos"):
            ax.plot(xs, s["cls_cos"], ":", color=color, lw=1)
    for b in report.get("skip_layers", []) if report.get("family", "regvit") == "regvit" else []:
        ax.axvspan(b - 0.5, b + 0.5, color="tab:red", alpha=0.08, lw=0)
    if blocks is not None:
        ax.set_xticks(range(len(blocks)), [str(b) for b in blocks], fontsize=6, rotation=90 if len(blocks) > 16 else 0)
    ax.set_xlabel("block (skipped blocks shaded)" if report.get("family", "regvit") == "regvit" else "decoder block")
    ax.set_ylabel("cosine to teacher (patch: solid, cls: dotted)", fontsize=8)
    kw = report.get("arch_kwargs") or {}
    short = report.get("preset") or report.get("family", "") + " " + " ".join(
        f"{k}={kw[k]}" for k in ("embed_dim", "depth", "patch_size", "num_register_tokens") if k in kw)
    ax.set_title(f"{short}\nskip {report['skip_layers']} ({report['skip_mode']}), held-out "
                 f"{report['heldout']['images']} images", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(alpha=0.3)
    names, vals, labels = [], [], []
    fl, tp = report.get("flops") or {}, report.get("throughput") or {}
    if fl.get("teacher_gmacs"):
        names += ["GMACs\nteacher", "GMACs\nstudent"]
        vals += [1.0, fl["student_gmacs"] / fl["teacher_gmacs"]]
        labels += [f"{fl['teacher_gmacs']:.3g}", f"{fl['student_gmacs']:.3g}"]
    if tp.get("teacher_img_per_s"):
        names += ["img/s\nteacher", "img/s\nstudent"]
        vals += [1.0, tp["speedup"]]
        labels += [f"{tp['teacher_img_per_s']:.3g}", f"{tp['student_img_per_s']:.3g}"]
    if names:
        bars = ax2.bar(range(len(names)), vals, color=["tab:gray", "tab:green"] * (len(names) // 2))
        for b, lab in zip(bars, labels):
            ax2.text(b.get_x() + b.get_width() / 2, b.get_height(), lab, ha="center", va="bottom", fontsize=7)
        ax2.set_xticks(range(len(names)), names, fontsize=7)
        ax2.set_ylabel("relative to teacher", fontsize=8)
        where = f"{tp.get('device', '')} {tp.get('dtype', '')} batch {tp.get('batch', '')}" if tp else ""
        ax2.set_title(f"cost ({where})".strip(), fontsize=9)
    else:
        ax2.axis("off")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    return path
