"""The timing harness: side-by-side speed measurements of groups of cases, and their reports.

A :class:`Case` is one thing to time (a model, an input, a mode); a :class:`Group` holds cases that are compared
with each other. Cases of a group are built together and timed *interleaved* (A B C A B C ...), so a noisy or
shared machine slows them alike and the ratios inside a group stay fair. Per case: warm-up steps, then
``repeats`` timed runs of ``iters`` steps each; the step time is the median over repeats, the spread their
inter-quartile range. Devices are synchronised before and after each timed run (never inside it). FLOPs are
multiply-accumulates with fused attention counted (:func:`count_gmacs`); mixed precision is the training tools'
(:func:`autocast`).

What is timed lives outside the package, in the checkout's ``benchmarks/`` (cases and suites), run by
``dense-adapters-benchmark`` (``tools/benchmark.py``).
"""
from __future__ import annotations

import ctypes
import datetime
import json
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import torch
from torch import Tensor, nn

from .errors import UserError

MODES = ("forward", "train")
DTYPES = ("fp32", "bf16")


# ----------------------------------------------------------------------------------------------- cases
@dataclass
class Workload:
    """A built model and one step of work on it (``step()`` processes ``images`` images)."""

    model: nn.Module
    step: Callable[[], None]
    images: int
    flops_fn: Optional[Callable[[], Optional[float]]] = None  # GMACs per image, computed on request


@dataclass
class Case:
    """One timed configuration; ``build(device)`` makes its :class:`Workload` when the group runs."""

    label: str  # short, unique in the group: 'ours', 'timm', 'skipat', 'bf16', ...
    model: str  # e.g. 'ViT-S/16'
    size: str  # input, e.g. '224' or '512x512'
    batch: int
    mode: str  # 'forward' | 'train'
    dtype: str = "fp32"
    compile: bool = False
    build: Callable[[torch.device], Workload] = field(default=None, repr=False)


@dataclass
class Group:
    """Cases compared with each other; ``ratios`` are (numerator label, denominator label) of throughputs."""

    name: str
    cases: list[Case]
    ratios: list[tuple[str, str]] = field(default_factory=list)
    warmup: Optional[int] = None  # overrides of run_group's for slow cases
    repeats: Optional[int] = None


# ---------------------------------------------------------------------------------------------- FLOPs
def _sdpa_flop(inputs, outputs) -> int:
    """MACs of ``scaled_dot_product_attention``: q@k^T and p@v (mmengine/fvcore leave it uncounted)."""
    from mmengine.analysis.jit_handles import get_shape

    q, k, v = (get_shape(t) for t in inputs[:3])
    lead = math.prod(q[:-2])
    return lead * q[-2] * k[-2] * (q[-1] + v[-1])


def count_gmacs(model: nn.Module, inputs: tuple) -> float:
    """Multiply-accumulates per call in G (fvcore convention, the 'GFLOPs' of ViT papers), fused attention
    included through :func:`_sdpa_flop`. Runs a trace on whatever device the model and inputs are on."""
    from mmengine.analysis import FlopAnalyzer

    fa = FlopAnalyzer(model, inputs).set_op_handle("aten::scaled_dot_product_attention", _sdpa_flop)
    fa.unsupported_ops_warnings(False)
    fa.uncalled_modules_warnings(False)
    fa.tracer_warnings("none")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return fa.total() / 1e9
    finally:
        model.train(was_training)


# ------------------------------------------------------------------------------------------------ steps
def autocast(device: torch.device, dtype: str):
    """bf16 autocast on the device's type, or a null context for fp32: the training tools' autocast
    (``dense_adapters.engine.amp.autocast``)."""
    from .engine.amp import autocast as amp_autocast

    if dtype not in DTYPES:
        raise UserError(f"unknown dtype {dtype!r}: use one of {DTYPES}")
    return amp_autocast(device.type, dtype)


def make_step(fn: Callable[[Tensor], Tensor], model: nn.Module, x: Tensor, mode: str, dtype: str,
              device: torch.device) -> Callable[[], None]:
    """Forward (no grad) or a training step: forward under autocast, backward, AdamW step."""
    if mode == "forward":
        model.eval()

        def step() -> None:
            with torch.no_grad(), autocast(device, dtype):
                fn(x)
        return step
    if mode != "train":
        raise UserError(f"unknown mode {mode!r}: use one of {MODES}")
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)

    def step() -> None:
        with autocast(device, dtype):
            out = fn(x)
        out.float().square().mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def maybe_compile(model: nn.Module, enabled: bool, backend: Optional[str] = None) -> nn.Module:
    """``torch.compile(model)`` (inductor, or ``backend``: 'eager' traces without code generation, for dry runs)."""
    if not enabled:
        return model
    return torch.compile(model, backend=backend) if backend else torch.compile(model)


# -------------------------------------------------------------------------------------------- measuring
def _proc_mib(key: str) -> Optional[float]:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_cpu_peak() -> bool:
    """Give freed heap back to the OS and reset the peak RSS (Linux ``clear_refs`` 5); False where unsupported."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_mib(step: Callable[[], None], device: torch.device) -> Optional[float]:
    """Run one step and return its peak memory in MiB: CUDA max allocated (weights included); CPU: growth of
    the peak resident set over the step (Linux; None elsewhere)."""
    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        sync(device)
        return torch.cuda.max_memory_allocated(device) / 2**20
    if not _reset_cpu_peak():
        step()
        return None
    before = _proc_mib("VmRSS")
    step()
    peak = _proc_mib("VmHWM")
    return None if before is None or peak is None else max(0.0, peak - before)


def quartiles(xs: Sequence[float]) -> tuple[float, float, float]:
    """(q1, median, q3); with fewer than 2 values all three are the value."""
    if len(xs) < 2:
        return xs[0], xs[0], xs[0]
    q1, q2, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return q1, q2, q3


def run_group(group: Group, device: torch.device, warmup: int = 2, repeats: int = 5, min_time: float = 1.0,
              flops: bool = True, log: Callable[[str], None] = print) -> list[dict]:
    """Build, warm up and time the group's cases interleaved; one result row (dict) per case."""
    warmup = group.warmup or warmup
    repeats = group.repeats or repeats
    built = []
    for c in group.cases:
        log(f"[{group.name}] build {c.label}: {c.model} {c.size} bs{c.batch} {c.mode} {c.dtype}"
            + (" compiled" if c.compile else ""))
        w = c.build(device)
        params = sum(p.numel() for p in w.model.parameters()) / 1e6
        gmacs = None
        if flops and w.flops_fn is not None:
            try:
                gmacs = w.flops_fn()
            except Exception as e:  # a trace failure must not lose the timings
                log(f"  FLOPs not counted: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
        for _ in range(max(0, warmup - 1)):
            w.step()
        sync(device)
        t0 = time.perf_counter()
        mem = peak_memory_mib(w.step, device)  # the last warm-up step, also timed to size the runs
        t_last = time.perf_counter() - t0
        iters = max(1, math.ceil(min_time / max(t_last, 1e-6))) if min_time > 0 else 1
        built.append((c, w, params, gmacs, mem, iters, []))
    for r in range(repeats):  # interleaved: A B C, A B C, ...
        for c, w, _, _, _, iters, times in built:
            sync(device)
            t0 = time.perf_counter()
            for _ in range(iters):
                w.step()
            sync(device)
            times.append((time.perf_counter() - t0) / iters)
    rows = []
    for c, w, params, gmacs, mem, iters, times in built:
        q1, med, q3 = quartiles(times)
        rows.append(dict(group=group.name, label=c.label, model=c.model, size=c.size, batch=c.batch, mode=c.mode,
                         dtype=c.dtype, compile=c.compile, device=device.type, params_m=round(params, 3),
                         gmacs_per_img=None if gmacs is None else round(gmacs, 3),
                         img_per_s=w.images / med, step_ms=med * 1e3, iqr_ms=(q3 - q1) * 1e3,
                         mem_mib=None if mem is None else round(mem, 1), iters=iters, repeats=repeats,
                         times_ms=[t * 1e3 for t in times]))
        log(f"  {c.label:>10}: {w.images / med:8.2f} img/s  step {med * 1e3:9.1f} ms  IQR {(q3 - q1) * 1e3:7.1f} ms")
    del built
    return rows


def group_ratios(group: Group, rows: list[dict]) -> list[dict]:
    """Throughput ratios named by the group, e.g. ours/timm = img/s of ours over img/s of timm.

    ``value`` is the median over repeats of the ratio within each repeat (the two runs were adjacent in time,
    so a load change on a shared machine hits both); ``iqr`` its spread; ``of_medians`` the ratio of the
    two median throughputs.
    """
    by = {r["label"]: r for r in rows if r["group"] == group.name}
    out = []
    for num, den in group.ratios:
        if num not in by or den not in by:
            continue
        a, b = by[num], by[den]
        paired = [(a["batch"] / ta) / (b["batch"] / tb) for ta, tb in zip(a["times_ms"], b["times_ms"])]
        q1, med, q3 = quartiles(paired)
        out.append(dict(group=group.name, ratio=f"{num}/{den}", value=med, iqr=q3 - q1,
                        of_medians=a["img_per_s"] / b["img_per_s"], model=a["model"], size=a["size"],
                        mode=a["mode"], dtype=a["dtype"]))
    return out


def run_groups(groups: Sequence[Group], device: torch.device, report: dict, warmup: int = 2, repeats: int = 5,
               min_time: float = 1.0, flops: bool = True, out_json: Optional[str] = None,
               out_md: Optional[str] = None, log: Callable[[str], None] = print) -> dict:
    """Run ``groups`` one after another into ``report`` (``rows``, ``ratios``, ``errors``, ``machine``).

    A group that fails is recorded in ``errors`` and the others go on; the reports are rewritten after every
    group, so a long run keeps what it measured."""
    for key in ("rows", "ratios", "errors"):
        report.setdefault(key, [])
    for g in groups:
        try:
            r = run_group(g, device, warmup, repeats, min_time, flops=flops, log=log)
        except Exception as e:  # one failing group must not lose the others' numbers
            msg = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            log(f"[{g.name}] FAILED: {msg}")
            report["errors"].append(dict(group=g.name, error=msg))
            if device.type == "cuda":
                torch.cuda.empty_cache()  # an out-of-memory group leaves its cache behind
            continue
        report["rows"] += r
        report["ratios"] += group_ratios(g, r)
        report["machine"]["load_avg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
        write_reports(report, out_json, out_md)
    return report


# ----------------------------------------------------------------------------------------------- reports
def machine_info(device: torch.device) -> dict:
    import mmengine
    import timm

    from . import registry  # noqa: F401  (mmseg imports under mmcv-lite only after this)
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
             f"{report['min_time']} s, cases of a group interleaved", ""] + result_tables(report)
    return "\n".join(lines) + "\n"


def result_tables(report: dict, level: int = 2) -> list[str]:
    """The markdown lines of a report's results, ratios and failed groups (headings at ``level``)."""
    h = "#" * level
    cols = COLUMNS + ([("MFU", "mfu")] if any(r.get("mfu") is not None for r in report["rows"]) else [])
    lines = [f"{h} Results", "", "| " + " | ".join(c for c, _ in cols) + " |", "|" + "---|" * len(cols)]
    for r in report["rows"]:
        lines.append("| " + " | ".join(_fmt(r.get(k)) for _, k in cols) + " |")
    lines += ["", f"{h} Ratios (throughput, same group, measured interleaved)", "",
              "Median over repeats of the ratio within each repeat (IQR), and the ratio of the median throughputs.",
              "", "| group | ratio | median paired | IQR | of medians |", "|---|---|---|---|---|"]
    for q in report["ratios"]:
        lines.append(f"| {q['group']} | {q['ratio']} | {q['value']:.3f} | {q['iqr']:.3f} | {q['of_medians']:.3f} |")
    if report.get("errors"):
        lines += ["", f"{h} Failed groups", ""] + [f"- {e['group']}: {e['error']}" for e in report["errors"]]
    return lines


def print_table(rows: list) -> None:
    keys = [("case", "label"), ("model", "model"), ("input", "size"), ("bs", "batch"), ("mode", "mode"),
            ("dtype", "dtype"), ("GMACs", "gmacs_per_img"), ("img/s", "img_per_s"), ("step ms", "step_ms"),
            ("IQR", "iqr_ms"), ("MiB", "mem_mib")]
    table = [[h for h, _ in keys]] + [[_fmt(r.get(k)) for _, k in keys] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(keys))]
    for row in table:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths)))


def write_reports(report: dict, out_json: Optional[str], out_md: Optional[str]) -> None:
    if out_json:
        with open(out_json, "w") as f:
            json.dump(report, f, indent=1)
    if out_md:
        with open(out_md, "w") as f:
            f.write(markdown(report))
