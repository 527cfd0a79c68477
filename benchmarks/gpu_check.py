"""The GPU check: every GPU path of the toolkit run, measured and checked in one command, each step bounded in time.

    bash scripts/gpu_check.sh                          # on a CUDA machine: writes docs/benchmarks_gpu.{md,json}
    bash scripts/gpu_check.sh --dry-run                # CPU, tiny sizes, reports in a temporary folder (CI)
    bash scripts/gpu_check.sh --steps train-fp16 test-fp16 --out-dir /tmp/x     # rerun some steps
    bash scripts/gpu_check.sh --list                   # the steps, in order

``scripts/gpu_check.sh`` installs what the machine lacks from carried wheels (``scripts/gpu_wheels.sh``) and runs
this file. Each step is a process of its own with a timeout and prints one result line (PASS, FAIL or SKIP). The
steps run in three phases: ``prep`` (environment, sample data), ``tools`` (the train/test/distributed tools and
the bf16 agreement, several at once: functional checks), ``timed`` (benchmarks, one at a time, alone on the GPU).
The whole run keeps to ``--budget`` seconds: a step that would start after it is reported as skipped. The exit
code is 1 if any step failed. With ``--dry-run`` the same steps run on the CPU at tiny sizes; steps that need
CUDA (fp16 AMP, FSDP) build and check the configuration they would run with and report "skipped (needs CUDA)".
On the device machine of this workplace (``$OUT`` set) the reports, the console log and all step logs are also
copied to ``$OUT``. docs/benchmarks_gpu.md says how a session runs it there.

The parent process uses the standard library only (it survives a broken torch); the steps that measure run
``benchmarks/gpu_steps.py`` through ``--worker NAME``.
"""
from __future__ import annotations

import argparse
import datetime
import glob
import json
import math
import os
import os.path as osp
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PHASES = ("prep", "tools", "timed")
ADE_CONFIG = "configs/ade20k_regvit_upernet.py"
FSDP_CONFIG = "configs/ade20k_regvit_large_fsdp.py"

# The tools' runs: the configs shortened to a few iterations on the ADE sample, random weights (nothing is
# downloaded), validation off (tools/test.py evaluates the checkpoint); in the dry run the model is shrunk too.
RUN_CONFIG = """# Written by benchmarks/gpu_check.py: {base} for a {iters}-iteration check on the ADE sample.
_base_ = ['{root}/{base}']
model = dict(backbone=dict(init_cfg=None{tiny_backbone}){tiny_model})
train_dataloader = dict(batch_size={batch}, num_workers={workers}, persistent_workers=False{tiny_train})
val_cfg = None
val_dataloader = None
val_evaluator = None
test_dataloader = dict(num_workers={workers}, persistent_workers=False{tiny_test})
param_scheduler = []
train_cfg = dict(max_iters={iters}, val_interval={iters})
default_hooks = dict(checkpoint=dict(interval={iters}), logger=dict(interval=1))
randomness = dict(seed=0)
"""
TINY_BACKBONE = ", embed_dim=64, depth=4, num_heads=2, img_size=56, out_indices=(0, 1, 2, 3)"
TINY_MODEL = """,
    data_preprocessor=dict(size=(56, 56)),
    neck=dict(in_channels=[64, 64, 64, 64], out_channels=64),
    decode_head=dict(in_channels=[64, 64, 64, 64], channels=16),
    auxiliary_head=dict(in_channels=64, channels=16),
    test_cfg=dict(mode='whole')"""
TINY_TRAIN = """, dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='Resize', scale=(56, 56), keep_ratio=False), dict(type='PackSegInputs')])"""
TINY_TEST = """, dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'), dict(type='Resize', scale=(56, 56), keep_ratio=False),
    dict(type='LoadAnnotations', reduce_zero_label=True), dict(type='PackSegInputs')])"""


@dataclass
class Ctx:
    dry: bool
    work: str  # everything the steps write
    python: str
    jobs: int
    budget: float
    iters: int
    peak_tflops: Optional[float] = None
    weights_dir: Optional[str] = None
    start: float = field(default_factory=time.monotonic)
    log_file: Optional[str] = None
    min_start: float = 15.0  # seconds of budget a step needs left to start

    def path(self, *parts: str) -> str:
        return osp.join(self.work, *parts)

    def left(self) -> float:
        return self.budget - (time.monotonic() - self.start)


@dataclass
class Step:
    name: str
    what: str
    phase: str
    timeout: float  # seconds on a GPU
    dry_timeout: float
    check: Callable[[Ctx, "Step", str], dict]  # (ctx, step, log text) -> dict(status, line, result)
    command: Optional[Callable[[Ctx], list]] = None  # a tool's command line; None: the worker of the same name
    cuda_only: bool = False  # without CUDA (dry run): the worker 'prep-<name>' builds and checks its config
    after: tuple = ()
    env: dict = field(default_factory=dict)

    def worker(self, ctx: Ctx) -> Optional[str]:
        """The worker that runs this step (benchmarks/gpu_steps.py), or None for a tool's command."""
        if ctx.dry and self.cuda_only:
            return "prep-" + self.name
        return None if self.command else self.name


# ---------------------------------------------------------------------------------------------- commands
def worker_command(ctx: Ctx, names: list) -> list:
    """One process running the workers ``names`` in turn (each writes steps/<name>/result.json)."""
    argv = [ctx.python, osp.abspath(__file__), "--worker", *names, "--work-dir", ctx.work]
    argv += ["--dry-run"] if ctx.dry else []
    argv += ["--peak-tflops", str(ctx.peak_tflops)] if ctx.peak_tflops else []
    argv += ["--weights-dir", ctx.weights_dir] if ctx.weights_dir else []
    argv += ["--iters", str(ctx.iters)]
    return argv


def ckpt_path(ctx: Ctx, run: str) -> str:
    return ctx.path(run, f"iter_{ctx.iters}.pth")


def train(amp_dtype: str) -> Callable[[Ctx], list]:
    run = f"train-{'fp16' if amp_dtype == 'float16' else 'bf16'}"
    return lambda ctx: [ctx.python, osp.join(ROOT, "tools", "train.py"), ctx.path("configs", "ade.py"), "--amp",
                        "--amp-dtype", amp_dtype, "--work-dir", ctx.path(run), "--data-root", data_root(ctx)]


def test(run: str) -> Callable[[Ctx], list]:
    return lambda ctx: [ctx.python, osp.join(ROOT, "tools", "test.py"), ctx.path("configs", "ade.py"),
                        ckpt_path(ctx, run), "--work-dir", ctx.path("test-" + run.split("-")[1]),
                        "--data-root", data_root(ctx)]


def dist(config: str, run: str) -> Callable[[Ctx], list]:
    return lambda ctx: ["bash", osp.join(ROOT, "tools", "dist_train.sh"), ctx.path("configs", config), "1",
                        "--work-dir", ctx.path(run), "--data-root", data_root(ctx)]


def data_root(ctx: Ctx) -> str:
    return ctx.path("data", "ADEChallengeData2016")


# ------------------------------------------------------------------------------------------------ checks
def _last_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("$ ")]
    for ln in reversed(lines):
        if ln.startswith("error:") or re.match(r"^[\w.]+(Error|Exception|Interrupt)\b", ln):
            return ln[:300]
    return lines[-1][:300] if lines else "no output"


def worker_check(ctx: Ctx, step: Step, log: str) -> dict:
    path = ctx.path("steps", step.worker(ctx), "result.json")
    if not osp.isfile(path):
        return dict(status="fail", line=f"no result ({_last_error(log)})", result={})
    with open(path) as f:
        return json.load(f)


def _scalars(work: str) -> list[dict]:
    files = sorted(glob.glob(osp.join(work, "*", "vis_data", "scalars.json")))
    if not files:
        return []
    with open(files[-1]) as f:
        return [json.loads(ln) for ln in f if ln.strip()]


def _dumped_config(work: str) -> str:
    files = sorted(glob.glob(osp.join(work, "*", "vis_data", "config.py")))
    if not files:
        return ""
    with open(files[-1]) as f:
        return f.read()


def train_summary(ctx: Ctx, run: str, log: str, expect: tuple = ()) -> dict:
    """Losses finite at every logged iteration, the checkpoint written, the expected settings in the config."""
    work = ctx.path(run)
    logs = [r for r in _scalars(work) if "loss" in r]
    losses = [r["loss"] for r in logs]
    ckpt = ckpt_path(ctx, run)
    res = dict(iterations=len(losses), losses=losses, checkpoint=ckpt if osp.isfile(ckpt) else None)
    if logs:
        res["s_per_iter"] = logs[-1].get("time")
        res["memory_mib"] = max((r.get("memory") or 0) for r in logs) or None
    problems = []
    if len(losses) != ctx.iters:
        problems.append(f"{len(losses)} of {ctx.iters} iterations logged ({_last_error(log)})")
    if any(not isinstance(v, (int, float)) or not math.isfinite(v) for v in losses):
        problems.append(f"non-finite loss: {losses}")
    if not res["checkpoint"]:
        problems.append(f"no checkpoint {osp.basename(ckpt)}")
    dumped = _dumped_config(work)
    for text in expect:
        if text not in dumped:
            problems.append(f"{text!r} not in the run's config")
    line = (f"{len(losses)} iterations, loss {losses[0]:.3f} -> {losses[-1]:.3f}" if losses else "no iterations")
    if res.get("s_per_iter"):
        line += f", {res['s_per_iter']:.3g} s/iter"
    if res.get("memory_mib"):
        line += f", max memory {res['memory_mib']} MiB"
    return dict(status="fail" if problems else "pass", line="; ".join(problems) + " | " + line if problems else line,
                result=res)


def train_check(amp_dtype: str) -> Callable:
    def check(ctx: Ctx, step: Step, log: str) -> dict:
        cuda = not ctx.dry
        wrapper = ("AmpOptimWrapper" if cuda else "dense_adapters.AutocastOptimWrapper")
        out = train_summary(ctx, step.name, log, expect=(wrapper, f"dtype='{amp_dtype}'") if cuda else (wrapper,))
        if out["status"] == "pass":
            scale = ", dynamic loss scale" if amp_dtype == "float16" else ""
            out["line"] += f"; {wrapper.split('.')[-1]} {amp_dtype}{scale}" + ("" if cuda else " (CPU autocast)")
        return out
    return check


def test_check(ctx: Ctx, step: Step, log: str) -> dict:
    m = re.search(r"^metrics: (.*)$", log, re.M)
    if not m:
        return dict(status="fail", line=f"no metrics line ({_last_error(log)})", result={})
    metrics = dict(kv.split("=", 1) for kv in m.group(1).split(", ") if "=" in kv)
    try:
        miou = float(metrics.get("mIoU", "nan"))
    except ValueError:
        miou = float("nan")
    ok = math.isfinite(miou) and 0 <= miou <= 100
    return dict(status="pass" if ok else "fail", line=f"checkpoint of {step.after[0]} evaluated: {m.group(1)}"
                + ("" if ok else " (mIoU not in [0, 100])"), result=dict(metrics=metrics))


def dist_check(backend_gpu: str) -> Callable:
    """A training run under torchrun: as :func:`train_summary`, and mmengine's runtime report must show the
    launcher, distributed training, one process and the expected backend."""
    def check(ctx: Ctx, step: Step, log: str) -> dict:
        backend = "gloo" if ctx.dry else backend_gpu
        out = train_summary(ctx, step.name, log)
        found = re.findall(r"dist_cfg: \{'backend': '(\w+)'", log)
        world = re.findall(r"GPU number: (\d+)", log)  # mmengine's name for the world size
        out["result"].update(backend=found[-1] if found else None, world_size=world[-1] if world else None)
        problems = []
        if backend not in found:
            problems.append(f"backend {backend} not in the runtime report ({found or 'none found'})")
        if "Distributed training: True" not in log or "Distributed launcher: pytorch" not in log:
            problems.append("not a distributed run (launcher pytorch) by the runtime report")
        if world[-1:] != ["1"]:
            problems.append(f"world size {world[-1] if world else '?'} (1 process asked)")
        if problems:
            out["status"], out["line"] = "fail", "; ".join(problems) + " | " + out["line"]
        elif out["status"] == "pass":
            out["line"] = f"1 process, backend {backend}: " + out["line"]
        return out
    return check


# --------------------------------------------------------------------------------------------------- steps
STEPS = [
    Step("env", "versions, GPU, bf16 peak for MFU, measured bf16 matmul", "prep", 90, 90, worker_check),
    Step("data", "the ADE20K-format sample (dense_adapters.datasets.samples)", "prep", 90, 90, worker_check),
    Step("train-fp16", f"tools/train.py {ADE_CONFIG} --amp (fp16, dynamic loss scale)", "tools", 240, 120,
         train_check("float16"), train("float16"), cuda_only=True, after=("data",)),
    Step("train-bf16", f"tools/train.py {ADE_CONFIG} --amp --amp-dtype bfloat16", "tools", 240, 150,
         train_check("bfloat16"), train("bfloat16"), after=("data",)),
    Step("test-fp16", "tools/test.py on the fp16 run's checkpoint", "tools", 150, 90, test_check, test("train-fp16"),
         after=("train-fp16",)),
    Step("test-bf16", "tools/test.py on the bf16 run's checkpoint", "tools", 150, 90, test_check, test("train-bf16"),
         after=("train-bf16",)),
    Step("dist-nccl", "tools/dist_train.sh, 1 process (nccl; gloo in the dry run)", "tools", 240, 150,
         dist_check("nccl"), dist("ade.py", "dist-nccl"), after=("data",),
         env=dict(PORT="29531")),
    Step("fsdp", f"tools/dist_train.sh {FSDP_CONFIG} 1 (FlexibleRunner + FSDP, ViT-L/14)", "tools", 300, 90,
         lambda ctx, step, log: train_summary(ctx, "fsdp", log), dist("fsdp.py", "fsdp"), cuda_only=True,
         after=("data",), env=dict(PORT="29532")),
    Step("bf16-agreement", "bf16 vs fp32 features (cosine) of the large presets at 1024", "tools", 240, 90,
         worker_check),
    Step("bench-vit", "ours vs timm vs mmseg, ViT-S/B at 224/512, bf16, forward/train; fp32 vs bf16; MFU",
         "timed", 240, 120, worker_check),
    Step("bench-large", "ViT-L/16 and SkipAt at 1024; DINOv3 presets ours vs timm", "timed", 180, 90, worker_check),
    Step("bench-lost", "LOST batched vs per image", "timed", 90, 60, worker_check),
    Step("bench-ckpt", "gradient checkpointing vs plain: memory, speed, largest batch that fits", "timed", 180, 60,
         worker_check),
    Step("bench-compile", "eager vs torch.compile (inductor; the dry run traces with the eager backend)", "timed",
         240, 90, worker_check),
]
STEP_NAMES = [s.name for s in STEPS]


def write_configs(ctx: Ctx) -> None:
    """The shortened configs of the tool steps (``RUN_CONFIG``)."""
    os.makedirs(ctx.path("configs"), exist_ok=True)
    tiny = ctx.dry
    # the configs' own batches (4xb4, 8xb2); the dry run shrinks the UPerNet model (FSDP is only prepared there)
    for name, base, batch, shrink in (("ade.py", ADE_CONFIG, 2 if tiny else 4, tiny), ("fsdp.py", FSDP_CONFIG, 2,
                                                                                       False)):
        text = RUN_CONFIG.format(base=base, root=ROOT, iters=ctx.iters, batch=batch, workers=0 if tiny else 2,
                                 tiny_backbone=TINY_BACKBONE if shrink else "", tiny_model=TINY_MODEL if shrink else "",
                                 tiny_train=TINY_TRAIN if shrink else "",
                                 tiny_test=TINY_TEST if shrink else "")
        with open(ctx.path("configs", name), "w") as f:
            f.write(text)


# -------------------------------------------------------------------------------------------------- runner
def _say(ctx: Ctx, text: str) -> None:
    print(text, flush=True)
    if ctx.log_file:
        with open(ctx.log_file, "a") as f:
            f.write(text + "\n")


def _result_line(ctx: Ctx, r: dict) -> None:
    _say(ctx, f"gpu_check: {r['status'].upper():4} {r['name']:<15} {r['seconds']:6.1f} s  {r['line']}")


@dataclass
class Job:
    """One process: a tool's command, or workers run in turn (several only in the dry run)."""

    name: str
    steps: list
    argv: list = field(default_factory=list)
    env: dict = field(default_factory=dict)
    budget_cut: bool = False  # its timeout was shortened to the budget left


def rounds(ctx: Ctx) -> list:
    """The phases run one after the other. The dry run times nothing, so all its steps run in one round."""
    return [PHASES] if ctx.dry else [(p,) for p in PHASES]


def plan_jobs(ctx: Ctx, steps: list) -> list:
    """The processes of one round, in order. On a GPU every step is a process of its own (a crash or hang stays
    inside it); in the dry run a round's worker steps share one process, since a CPU run is mostly imports (torch,
    timm and mmseg cost ~10 s of CPU per process)."""
    jobs, batch = [], None
    for step in steps:
        name = step.worker(ctx)
        if name is None:
            jobs.append(Job(step.name, [step], step.command(ctx), dict(step.env)))
        elif ctx.dry:
            if batch is None:
                batch = Job("workers", [])
                jobs.append(batch)
            batch.steps.append(step)
        else:
            jobs.append(Job(step.name, [step]))
    for job in jobs:
        if not job.argv:
            job.argv = worker_command(ctx, [s.worker(ctx) for s in job.steps])
    return jobs


def _launch(ctx: Ctx, job: Job):
    os.makedirs(ctx.path("logs"), exist_ok=True)
    for step in job.steps:  # nothing of an earlier run in the same work dir may count for this one
        name = step.worker(ctx)
        stale = ctx.path("steps", name, "result.json") if name else ctx.path(step.name)
        if osp.isdir(stale):
            shutil.rmtree(stale)
        elif osp.isfile(stale):
            os.remove(stale)
    log_path = ctx.path("logs", f"{job.name}.log")
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", PYTHON=ctx.python,
               **job.env)
    if ctx.dry:
        env.setdefault("OMP_NUM_THREADS", "1")
    logf = open(log_path, "w")
    logf.write("$ " + " ".join(job.argv) + "\n")
    logf.flush()
    proc = subprocess.Popen(job.argv, stdout=logf, stderr=subprocess.STDOUT, cwd=ROOT, env=env,
                            start_new_session=True)
    return proc, logf, log_path


def _stop(proc) -> None:
    """End a step's process and everything it started (its own process group)."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _finish(ctx: Ctx, step: Step, job: Job, returncode: int, log_path: str, seconds: float, timeout: float,
            timed_out: bool) -> dict:
    with open(log_path, errors="replace") as f:
        log = f.read()
    try:
        out = (worker_check if step.worker(ctx) else step.check)(ctx, step, log)
    except Exception as e:  # a check that breaks is a failed step, not a crashed report
        out = dict(status="fail", line=f"check failed: {type(e).__name__}: {e}", result={})
    if "seconds" in out:  # a worker's own time (several share a process in the dry run)
        seconds = out.pop("seconds")
    if timed_out and job.budget_cut and (len(job.steps) == 1 or not out.get("result")):
        out = dict(status="skip", result={}, line=f"stopped after {timeout:.0f} s at the end of the time budget "
                   f"({ctx.budget:.0f} s): rerun with --steps {step.name}")
    elif timed_out and (len(job.steps) == 1 or not out.get("result")):
        out = dict(status="fail", line=f"timed out after {timeout:.0f} s (log: {log_path}; last: {_last_error(log)})",
                   result={})
    elif returncode != 0 and out["status"] != "fail":
        out = dict(out, status="fail", line=f"exit code {returncode} ({_last_error(log)}) | {out['line']}")
    return dict(name=step.name, what=step.what, phase=step.phase, seconds=round(seconds, 1), timeout=round(timeout),
                returncode=returncode, log=log_path, **out)


def run_steps(ctx: Ctx, steps: list, selected: set, fatal: tuple = ("env",)) -> list:
    """Run the selected steps phase by phase (``tools`` with up to ``ctx.jobs`` processes at once), each process
    within its steps' timeouts and the remaining budget; one result line per step as it ends. Returns the
    results in the order of ``steps``."""
    results: dict = {}
    by_name = {s.name: s for s in steps}
    stop_reason = None

    def record(r: dict) -> None:
        results[r["name"]] = r
        _result_line(ctx, r)

    def skip(step: Step, why: str) -> None:
        record(dict(name=step.name, what=step.what, phase=step.phase, seconds=0.0, status="skip", line=why,
                    result={}))

    for phases in rounds(ctx):
        todo = plan_jobs(ctx, [s for s in steps if s.phase in phases and s.name in selected])
        slots = max(1, ctx.jobs) if "tools" in phases else 1
        running: dict = {}
        while todo or running:
            for job in list(todo):
                if len(running) >= slots:
                    break
                inside = {s.name for s in job.steps}
                deps = [d for s in job.steps for d in s.after if d in selected and d not in inside]
                if any(d not in results for d in deps):
                    continue  # waits for a step still running
                todo.remove(job)
                bad = sorted({d for d in deps if results[d]["status"] != "pass"})
                why = None
                if stop_reason:
                    why = f"skipped: {stop_reason}"
                elif bad and ctx.dry and all(by_name[d].cuda_only for d in bad):
                    why = f"skipped (needs CUDA: {', '.join(bad)} runs on a GPU only)"
                elif bad:
                    why = f"skipped: needs {', '.join(bad)}"
                elif ctx.left() < ctx.min_start:
                    why = (f"skipped: out of time budget ({ctx.budget:.0f} s; rerun with --steps "
                           + " ".join(s.name for s in job.steps) + ")")
                if why:
                    for s in job.steps:
                        skip(s, why)
                    continue
                own = sum(s.dry_timeout if ctx.dry else s.timeout for s in job.steps)
                timeout = min(own, ctx.left())
                job.budget_cut = timeout < own  # a timeout then means the budget ended, not that the step hung
                running[job.name] = (job, *_launch(ctx, job), time.monotonic(), timeout)
            if not running:
                if todo:  # every job left waits for a step that will never run
                    for job in todo:
                        for s in job.steps:
                            skip(s, "skipped: its dependencies did not run")
                    todo = []
                continue
            time.sleep(0.2)
            for name, (job, proc, logf, log_path, t0, timeout) in list(running.items()):
                timed_out = time.monotonic() - t0 > timeout
                done = proc.poll() is not None or timed_out
                if not done and len(job.steps) > 1:  # workers sharing a process: report each as it ends
                    for step in job.steps:
                        if step.name not in results and osp.isfile(ctx.path("steps", step.worker(ctx),
                                                                            "result.json")):
                            record(_finish(ctx, step, job, 0, log_path, time.monotonic() - t0, timeout, False))
                if not done:
                    continue
                _stop(proc)  # on timeout the step; else whatever it left running (torchrun, loader workers)
                logf.close()
                del running[name]
                for step in job.steps:
                    if step.name in results:
                        continue
                    r = _finish(ctx, step, job, proc.returncode, log_path, time.monotonic() - t0, timeout,
                                timed_out)
                    record(r)
                    if step.name in fatal and r["status"] == "fail":
                        stop_reason = f"{step.name} failed"
    return [results[s.name] for s in steps if s.name in results]


# ------------------------------------------------------------------------------------------------- reports
def _bench_section(md_path: str) -> list[str]:
    """The results and ratios of a bench step's harness report, headings one level down."""
    if not osp.isfile(md_path):
        return []
    with open(md_path) as f:
        text = f.read()
    i = text.find("## Results")
    return [ln.replace("## ", "#### ", 1) if ln.startswith("## ") else ln
            for ln in (text[i:] if i >= 0 else "").splitlines()]


def write_reports(ctx: Ctx, results: list, out_dir: str, argv: list) -> tuple[str, str]:
    os.makedirs(out_dir, exist_ok=True)
    env = next((r for r in results if r["name"] == "env"), {}).get("result", {})
    versions = env.get("versions", {})
    mode = "dry run (CPU, tiny sizes)" if ctx.dry else env.get("gpu") or "GPU"
    report = dict(mode="dry-run" if ctx.dry else "gpu", date=datetime.datetime.now().isoformat(timespec="seconds"),
                  command="bash scripts/gpu_check.sh " + " ".join(argv), budget_s=ctx.budget, env=env,
                  steps=results, passed=all(r["status"] != "fail" for r in results))
    json_path = osp.join(out_dir, "benchmarks_gpu.json")
    with open(json_path, "w") as f:
        json.dump(report, f, indent=1)
    counts = {k: sum(r["status"] == k for r in results) for k in ("pass", "fail", "skip")}
    lines = [f"# GPU check: {mode}", "",
             f"`{report['command'].strip()}`, {report['date']}: {counts['pass']} passed, {counts['fail']} failed, "
             f"{counts['skip']} skipped. Written by `benchmarks/gpu_check.py`; how to run it and what each step "
             "does: [gpu_check.md](gpu_check.md).", ""]
    if env.get("gpu"):
        lines += [f"- GPU: {env['gpu']} ({env.get('memory_gib')} GiB, {env.get('capability')}, "
                  f"{env.get('multiprocessors')} SMs), driver {env.get('driver')}, CUDA {env.get('cuda')}",
                  f"- MFU peak: {env.get('peak_tflops')} TFLOP/s dense bf16 ({env.get('peak_source')}); measured "
                  f"bf16 matmul {env.get('matmul_n')}^3: {env.get('matmul_bf16_tflops')} TFLOP/s"]
    if versions:
        lines.append("- software: " + ", ".join(f"{k} {versions.get(k)}" for k in
                                                ("python", "torch", "timm", "mmengine", "mmcv", "mmseg",
                                                 "dense_adapters", "numpy")))
    lines += ["", "## Steps", "", "| step | what | status | s | result |", "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['name']} | {r['what']} | {r['status'].upper()} | {r['seconds']:.0f} | "
                     f"{r['line'].replace('|', '/')} |")
    for r in results:
        if r["name"].startswith("bench-"):
            section = _bench_section(ctx.path("steps", r["name"], f"{r['name']}.md"))
            if section:
                lines += ["", f"## {r['name']}: {r['what']}", "", r["line"].replace("|", "/"), ""] + section
    lines += ["", "MFU = 2 x MACs per image x 3 (a training step: forward + backward) x images/s / dense bf16 peak; "
              "MACs counted by mmengine's FlopAnalyzer with fused attention added (docs/benchmarks.md).", ""]
    md_path = osp.join(out_dir, "benchmarks_gpu.md")
    with open(md_path, "w") as f:
        f.write("\n".join(lines))
    return md_path, json_path


def copy_out(ctx: Ctx, dest: str, md: str, js: str) -> None:
    """The reports, the console log and one archive of all step logs and raw bench reports, into ``dest``
    (at most 8 plain files: what the device machine sends back)."""
    os.makedirs(dest, exist_ok=True)
    for p in (md, js, ctx.log_file):
        if p and osp.isfile(p):
            shutil.copy(p, dest)
    with tarfile.open(osp.join(dest, "gpu_check_logs.tar.gz"), "w:gz") as tar:
        for sub in ("logs", "steps", "configs"):
            if osp.isdir(ctx.path(sub)):
                tar.add(ctx.path(sub), arcname=sub)


# ----------------------------------------------------------------------------------------------------- main
def source_hash(root: str = ROOT) -> str:
    """sha256 over the files that go into the package's wheel (``dense_adapters/``, ``pyproject.toml``): tells
    ``scripts/gpu_check.sh`` whether a carried wheel of the package was built from this checkout."""
    import hashlib

    h = hashlib.sha256()
    files = [osp.join(root, "pyproject.toml")]
    for dirpath, dirnames, filenames in os.walk(osp.join(root, "dense_adapters")):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        files += [osp.join(dirpath, f) for f in filenames if not f.endswith((".pyc", ".pyo"))]
    for path in sorted(files):
        h.update(osp.relpath(path, root).encode() + b"\0")
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def parse_args(argv: Optional[list] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes; reports go to the work dir, not docs/")
    p.add_argument("--steps", nargs="+", choices=STEP_NAMES, metavar="STEP", help="run only these (see --list)")
    p.add_argument("--skip", nargs="+", choices=STEP_NAMES, metavar="STEP", default=[], help="leave these out")
    p.add_argument("--list", action="store_true", help="print the steps and exit")
    p.add_argument("--work-dir", help="where steps write (default: work_dirs/gpu_check, dry run: a temporary folder)")
    p.add_argument("--out-dir", help="where benchmarks_gpu.md/.json go (default: docs/; a dry run or a run with "
                                     "--steps/--skip: WORK_DIR/report)")
    p.add_argument("--copy-to", default=os.environ.get("OUT"),
                   help="also copy the reports and logs here (default: $OUT, the device machine's return folder)")
    p.add_argument("--budget", type=float, help="seconds the steps may take in all (default: 330 on a GPU, which with the install and "
                        "the report fits a 420 s call; 300 dry)")
    p.add_argument("--jobs", type=int, help="processes of the tools phase run at once (default: 4 on a GPU, 3 dry)")
    p.add_argument("--iters", type=int, help="training iterations of the tool steps (default: 10 on a GPU, 2 dry)")
    p.add_argument("--peak-tflops", type=float, help="dense bf16 peak for MFU (default: from the GPU's name)")
    p.add_argument("--weights-dir", help="bf16-agreement: <preset>.pth files to use instead of random weights")
    p.add_argument("--python", default=sys.executable, help="the interpreter of the steps")
    # worker mode (one measuring step, run by the parent)
    p.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    p.add_argument("--source-hash", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def worker_main(a: argparse.Namespace) -> int:
    """Run the workers named by ``--worker`` in turn (``benchmarks/gpu_steps.py``), each into
    WORK_DIR/steps/<name>/result.json; one that raises is recorded as failed and the next one runs."""
    import importlib
    import traceback

    from dense_adapters.cli.benchmark import load_benchmarks

    bm = load_benchmarks(osp.join(ROOT, "benchmarks"))
    steps = importlib.import_module(bm.__name__ + ".gpu_steps")
    ctx_kw = dict(dry=a.dry_run, peak_override=a.peak_tflops, weights_dir=a.weights_dir, work_dir=a.work_dir,
                  iters=a.iters)
    for name in a.worker:
        t0 = time.monotonic()
        out_dir = osp.join(a.work_dir, "steps", name)
        try:
            res = steps.run_worker(name, out_dir, **ctx_kw)
        except Exception as e:  # noqa: BLE001 - the step failed; its traceback goes to the log
            traceback.print_exc()
            res = dict(status="fail", line=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                       result={})
        res["seconds"] = round(time.monotonic() - t0, 1)
        os.makedirs(out_dir, exist_ok=True)
        with open(osp.join(out_dir, "result.json.tmp"), "w") as f:
            json.dump(res, f, indent=1, default=str)
        os.replace(osp.join(out_dir, "result.json.tmp"), osp.join(out_dir, "result.json"))  # whole or absent
        print(f"{name}: {res['status']}: {res['line']}", flush=True)
    return 0


def main(argv: Optional[list] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    a = parse_args(argv)
    if a.source_hash:
        print(source_hash())
        return 0
    if a.worker:
        return worker_main(a)
    if a.list:
        for s in STEPS:
            print(f"{s.name:<15} {s.phase:<6} {s.timeout:4.0f} s  {s.what}" + (" [CUDA only]" if s.cuda_only else ""))
        return 0
    work = a.work_dir or (tempfile.mkdtemp(prefix="gpu_check_") if a.dry_run else osp.join(ROOT, "work_dirs",
                                                                                         "gpu_check"))
    os.makedirs(work, exist_ok=True)
    ctx = Ctx(dry=a.dry_run, work=osp.abspath(work), python=a.python,
              jobs=a.jobs or (3 if a.dry_run else 4), budget=a.budget or (300 if a.dry_run else 330),
              iters=a.iters or (2 if a.dry_run else 10), peak_tflops=a.peak_tflops, weights_dir=a.weights_dir)
    ctx.log_file = ctx.path("gpu_check.log")
    open(ctx.log_file, "w").close()
    selected = set(a.steps or STEP_NAMES) - set(a.skip)
    if a.steps and "env" not in selected:
        selected.add("env")  # the report's machine section
    if {"train-fp16", "train-bf16", "test-fp16", "test-bf16", "dist-nccl", "fsdp"} & selected and not osp.isdir(
            data_root(ctx)):
        selected.add("data")
    write_configs(ctx)
    _say(ctx, f"gpu_check: {'dry run (CPU, tiny sizes)' if ctx.dry else 'GPU run'}, {len(selected)} steps, budget "
              f"{ctx.budget:.0f} s, work dir {ctx.work}")
    results = run_steps(ctx, STEPS, selected)
    partial = bool(a.steps or a.skip)  # a partial run never replaces the full report in docs/
    out_dir = a.out_dir or (ctx.path("report") if ctx.dry or partial else osp.join(ROOT, "docs"))
    shown = [x for i, x in enumerate(argv) if x != "--python" and (i == 0 or argv[i - 1] != "--python")]
    md, js = write_reports(ctx, results, out_dir, shown)
    failed = [r["name"] for r in results if r["status"] == "fail"]
    _say(ctx, f"gpu_check: {sum(r['status'] == 'pass' for r in results)} passed, {len(failed)} failed"
              + (f" ({', '.join(failed)})" if failed else "")
              + f", {sum(r['status'] == 'skip' for r in results)} skipped in {time.monotonic() - ctx.start:.0f} s; "
              f"report {md}")
    if a.copy_to:
        copy_out(ctx, a.copy_to, md, js)
        _say(ctx, f"gpu_check: reports and logs copied to {a.copy_to}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
