"""The measuring steps of the GPU check: each runs in a process of its own (``benchmarks/gpu_check.py --worker
NAME``) and returns ``dict(status, line, result)``; the check's driver bounds it in time and reports it.

* ``env``: versions, the GPU, the bf16 peak used for MFU (:data:`PEAK_BF16_TFLOPS`) and a measured bf16 matmul;
* ``bench-<part>``: the timed groups of ``suites.gpu_check_groups(part)`` through the benchmark harness
  (``dense_adapters.benchmark.run_groups``), MFU of bf16 training rows, and the checks on their ratios;
* ``bf16-agreement``: bf16 (autocast, and bf16 weights) vs fp32 features of the large presets at 1024;
* ``prep-*``: on a machine without CUDA, the configuration a CUDA-only step would run with, checked (dry runs).

Sizes are the GPU's, or tiny with ``dry=True`` (the CPU dry run that CI runs).
"""
from __future__ import annotations

import os
import os.path as osp
import subprocess
import time
from typing import Optional

from .suites import GPU_CHECK_PARTS

# (substring of torch.cuda.get_device_name, dense bf16 tensor-core TFLOP/s from the vendor's datasheet), first match
# wins (so 'H100 PCIe' before 'H100', 'GH200' before 'H200', 'L40S' before 'L4'). Datasheets quote sparse rates
# too, twice these: MFU here is against the dense rate.
PEAK_BF16_TFLOPS = (
    ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H200 NVL", 835.0), ("GH200", 989.4), ("H200", 989.4),
    ("H100", 989.4), ("H800", 989.4), ("B200", 2250.0), ("A100", 312.0), ("A800", 312.0), ("L40S", 362.1),
    ("L40", 181.0), ("L4", 121.0), ("A10", 125.0),
)
MATMUL_N = 8192  # the measured bf16 matmul: N x N x N (a few GB of traffic, well past launch overhead)
# ratios a GPU run must meet (medians of paired ratios). Ours and timm run the same kernels; bf16 autocast must
# beat fp32 on tensor cores; MFU above 1 means a wrong FLOP count or timing.
MIN_OURS_OVER_TIMM = 0.9
MIN_BF16_OVER_FP32 = 1.0
# bf16 vs fp32 features: per-token cosine of the final normed tokens
MIN_COSINE_MEAN, MIN_COSINE_MIN = 0.999, 0.99
AGREEMENT_PRESETS = ("dinov2_vitl14_reg4", "dinov2_vitg14_reg4", "dinov3_vitl16", "dinov3_vith16plus",
                     "dinov3_vit7b16")
AGREEMENT_LAYERSCALE = 1.0  # LayerScale for the agreement check (see bf16_agreement)
FIT_FRACTION = 0.92  # the grad-checkpointing fit probe plans for this share of the GPU's memory


def peak_bf16_tflops(device_name: str, override: Optional[float] = None) -> tuple[Optional[float], str]:
    """(dense bf16 TFLOP/s, where it comes from) for a GPU name; (None, why) when unknown."""
    if override:
        return float(override), "given with --peak-tflops"
    for key, value in PEAK_BF16_TFLOPS:
        if key.lower() in device_name.lower():
            return value, f"datasheet, dense bf16 ({key})"
    return None, f"no bf16 peak known for {device_name!r}: pass --peak-tflops"


def mfu(gmacs_per_img: Optional[float], img_per_s: float, peak_tflops: Optional[float], train: bool) -> Optional[float]:
    """Model FLOPs utilisation: 2 FLOPs per multiply-accumulate, a training step = 3 forwards (forward + backward
    for activations and weights), over the peak."""
    if not gmacs_per_img or not peak_tflops:
        return None
    return 2 * gmacs_per_img * (3 if train else 1) * img_per_s / (peak_tflops * 1e3)


# -------------------------------------------------------------------------------------------------- helpers
def _device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _gib(mib: Optional[float]) -> str:
    if mib is None:
        return "-"
    return f"{mib:.0f} MiB" if mib < 1024 else f"{mib / 1024:.1f} GiB"


def _pct(x: float) -> str:
    return f"{100 * x:.3g}%"


def _ratio(report: dict, group_part: str, ratio: str) -> Optional[float]:
    for q in report["ratios"]:
        if group_part in q["group"] and q["ratio"] == ratio:
            return q["value"]
    return None


def _span(values) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    lo, hi = min(values), max(values)
    return f"{lo:.2f}" if abs(hi - lo) < 0.005 else f"{lo:.2f}-{hi:.2f}"


def _row(report: dict, group_part: str, label: str) -> Optional[dict]:
    return next((r for r in report["rows"] if group_part in r["group"] and r["label"] == label), None)


# ----------------------------------------------------------------------------------------------------- env
def versions() -> dict:
    """Versions of what the check runs on, read from the installed metadata (no mmseg import: cheap)."""
    import importlib.metadata as md
    import platform

    import torch

    import dense_adapters

    out = dict(python=platform.python_version(), torch=torch.__version__, dense_adapters=dense_adapters.__version__,
               dense_adapters_from=osp.dirname(osp.dirname(osp.abspath(dense_adapters.__file__))))
    for key, dists in (("torchvision", ("torchvision",)), ("timm", ("timm",)), ("mmengine", ("mmengine",)),
                       ("mmcv", ("mmcv", "mmcv-lite")), ("mmseg", ("mmsegmentation",)), ("numpy", ("numpy",))):
        for dist in dists:
            try:
                out[key] = md.version(dist) + (" (lite)" if dist == "mmcv-lite" else "")
                break
            except md.PackageNotFoundError:
                out[key] = None
    return out


def env(dry: bool, peak_override: Optional[float] = None, **_) -> dict:
    """Versions, the device, the bf16 peak used for MFU and a measured bf16 matmul rate."""
    import torch

    info = versions()
    device = _device()
    res = dict(versions=info, device=str(device))
    if device.type != "cuda":
        if not dry:
            return dict(status="fail", line="no CUDA device: run with --dry-run on a machine without a GPU",
                        result=res)
        res.update(gpu=None, peak_tflops=None, peak_source="no GPU (dry run)")
        n, reps = 256, 3
    else:
        props = torch.cuda.get_device_properties(device)
        res.update(gpu=props.name, memory_gib=round(props.total_memory / 2**30, 1),
                   capability=f"sm_{props.major}{props.minor}", multiprocessors=props.multi_processor_count,
                   cuda=torch.version.cuda, bf16_supported=torch.cuda.is_bf16_supported())
        try:
            smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=20)
            res["driver"] = smi.stdout.strip().splitlines()[0] if smi.returncode == 0 and smi.stdout else None
        except (OSError, subprocess.TimeoutExpired, IndexError):
            res["driver"] = None
        peak, source = peak_bf16_tflops(props.name, peak_override)
        res.update(peak_tflops=peak, peak_source=source)
        n, reps = MATMUL_N, 10
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    res["matmul_bf16_tflops"] = round(2 * n**3 * reps / (time.perf_counter() - t0) / 1e12, 1)
    res["matmul_n"] = n
    vers = f"torch {info.get('torch')}, timm {info.get('timm')}, mmseg {info.get('mmseg')}, mmengine " \
           f"{info.get('mmengine')}, mmcv {info.get('mmcv')}"
    if device.type == "cuda":
        peak_txt = f"{res['peak_tflops']:g} TFLOP/s ({res['peak_source']})" if res["peak_tflops"] else res["peak_source"]
        line = (f"{res['gpu']} ({res['memory_gib']} GiB, {res['capability']}, driver {res.get('driver')}, CUDA "
                f"{res['cuda']}); {vers}; bf16 peak for MFU {peak_txt}; bf16 matmul {n}^3 measured "
                f"{res['matmul_bf16_tflops']:g} TFLOP/s")
        if not res["bf16_supported"]:
            return dict(status="fail", line=line + "; bf16 not supported on this GPU", result=res)
    else:
        line = f"CPU ({os.cpu_count()} logical CPUs), no GPU; {vers}; bf16 matmul {n}^3 {res['matmul_bf16_tflops']:g} " \
               "TFLOP/s (exercised only)"
    return dict(status="pass", line=line, result=res)


# ----------------------------------------------------------------------------------------------- benchmarks
def bench(part: str, dry: bool, out_dir: str, peak_override: Optional[float] = None, **_) -> dict:
    """One part of the timed benchmark groups (``suites.GPU_CHECK_PARTS``), then its checks and summary."""
    import torch

    from dense_adapters import benchmark as B

    from . import cases as C, suites as S

    device = _device()
    cuda = device.type == "cuda"
    if part == "ckpt" and not C.grad_ckpt_available():
        return dict(status="skip", line="skipped: not available (RegViT has no set_grad_checkpointing yet)",
                    result={})
    groups = S.gpu_check_groups(part, tiny=dry, compile_backend=None if cuda else "eager")
    warmup, repeats, min_time = S.GPU_CHECK_DRY_TIMING if dry else S.SUITE_TIMING["gpu-check"][:3]
    peak = peak_bf16_tflops(torch.cuda.get_device_name(device) if cuda else "cpu", peak_override)[0]
    report = dict(suite="gpu-check", task=part, warmup=warmup, repeats=repeats, min_time=min_time,
                  machine=B.machine_info(device), rows=[], ratios=[], errors=[], peak_tflops=peak)
    B.run_groups(groups, device, report, warmup, repeats, min_time,
                 out_json=osp.join(out_dir, f"bench-{part}.json"), out_md=osp.join(out_dir, f"bench-{part}.md"))
    for r in report["rows"]:
        if r["dtype"] == "bf16":
            r["mfu"] = mfu(r["gmacs_per_img"], r["img_per_s"], peak, r["mode"] == "train")
    problems = [f"{e['group']}: {e['error']}" for e in report["errors"]]
    problems += [f"{r['group']} {r['label']}: MFU {r['mfu']:.2f} > 1 (FLOP count or timing wrong)"
                 for r in report["rows"] if r.get("mfu") and r["mfu"] > 1]
    if cuda:  # speed checks only where the numbers mean something (not at tiny sizes on a shared CPU)
        problems += [f"{q['group']}: ours/timm {q['value']:.2f} < {MIN_OURS_OVER_TIMM}" for q in report["ratios"]
                     if q["ratio"] == "ours/timm" and q["value"] < MIN_OURS_OVER_TIMM]
        problems += [f"{q['group']}: bf16/fp32 {q['value']:.2f} < {MIN_BF16_OVER_FP32}" for q in report["ratios"]
                     if q["ratio"] == "bf16/fp32" and q["value"] < MIN_BF16_OVER_FP32]
    extra = {}
    if part == "lost":
        extra = _lost_agreement(C, dry, device)
        if extra["equal_boxes"] < 0.9 * extra["images"]:
            problems.append(f"LOST batched and per-image boxes differ on {extra['images'] - extra['equal_boxes']} "
                            f"of {extra['images']} images")
    if part == "ckpt":
        extra = _fit_probe(C, device, *(("tiny-test", 64, 256.0, 8) if dry else ("large", 1024, None, 512)))
        if extra.get("error"):
            problems.append(extra["error"])
        if cuda and extra.get("ckpt_mib") and extra["ckpt_mib"] >= extra["plain_mib"]:
            problems.append(f"checkpointing saves no memory: {extra['ckpt_mib']} vs {extra['plain_mib']} MiB")
    B.write_reports(report, osp.join(out_dir, f"bench-{part}.json"), osp.join(out_dir, f"bench-{part}.md"))
    summary = SUMMARIES[part](report, extra)
    status = "fail" if problems or not report["rows"] else "pass"
    line = summary if status == "pass" else "; ".join(problems[:3]) + (f" (+{len(problems) - 3} more)"
                                                                       if len(problems) > 3 else "") + f" | {summary}"
    return dict(status=status, line=line, result=dict(report=report, extra=extra, problems=problems))


def _summary_vit(report: dict, extra: dict) -> str:
    rows = [r for r in report["rows"] if r["mode"] == "train" and r["dtype"] == "bf16" and r["label"] == "ours"
            and "fp32 vs" not in r["group"]]
    row = next((r for r in rows if r["model"] == "ViT-B/16" and r["size"] == "224"), rows[0] if rows else None)
    parts = []
    if row:
        parts.append(f"{row['model']} {row['size']} bs{row['batch']} bf16 train {row['img_per_s']:.3g} img/s, "
                     + (f"MFU {_pct(row['mfu'])} of {report['peak_tflops']:g} TFLOP/s" if row.get("mfu") is not None
                        else "no MFU (no bf16 peak known for this device)"))
    q = report["ratios"]
    parts.append(f"ours/timm {_span(x['value'] for x in q if x['ratio'] == 'ours/timm')}")
    parts.append(f"ours/mmseg {_span(x['value'] for x in q if x['ratio'] == 'ours/mmseg')}")
    parts.append(f"SkipAt/attention at 512 {_span(x['value'] for x in q if x['ratio'] == 'skipat/ours')}")
    parts.append(f"bf16/fp32 forward {_span([_ratio(report, 'forward fp32 vs bf16', 'bf16/fp32')])}, train "
                 f"{_span([_ratio(report, 'train fp32 vs bf16', 'bf16/fp32')])}")
    return "; ".join(parts)


def _summary_large(report: dict, extra: dict) -> str:
    q = report["ratios"]
    parts = []
    big = next((r for r in report["rows"] if r["label"] == "ours" and r["mode"] == "train"
                and r["model"].startswith("ViT-")), None)
    if big:
        parts.append(f"{big['model']} {big['size']} bs{big['batch']} bf16 train {big['img_per_s']:.3g} img/s, "
                     f"{_gib(big['mem_mib'])}" + (f", MFU {_pct(big['mfu'])}" if big.get("mfu") else ""))
    vit = [x for x in q if x["model"].startswith("ViT-")]
    parts.append(f"ours/timm {_span(x['value'] for x in vit if x['ratio'] == 'ours/timm')}")
    parts.append(f"ours/mmseg {_span(x['value'] for x in vit if x['ratio'] == 'ours/mmseg')}")
    parts.append(f"SkipAt/attention {_span(x['value'] for x in vit if x['ratio'] == 'skipat/ours')}")
    presets = [x for x in q if x["model"].startswith("DINO")]
    if presets:
        parts.append(f"{presets[0]['model'].split(' ')[0]} ours/timm "
                     f"{_span(x['value'] for x in presets if x['ratio'] == 'ours/timm')}")
    else:
        parts.append("DINOv3 presets: not available yet")
    return "; ".join(parts)


def _summary_lost(report: dict, extra: dict) -> str:
    b, p = _row(report, "LOST", "batched"), _row(report, "LOST", "per-image")
    ratio = _ratio(report, "LOST", "batched/per-image")
    if not (b and p):
        return "no rows"
    return (f"{b['model'].split(' +')[0]} {b['size']}, {b['batch']} images: batched {b['img_per_s']:.3g} img/s vs "
            f"per image {p['img_per_s']:.3g} img/s ({_span([ratio])}x); equal boxes on {extra.get('equal_boxes')} of "
            f"{extra.get('images')} images")


def _summary_ckpt(report: dict, extra: dict) -> str:
    plain, ck = _row(report, "grad", "plain"), _row(report, "grad", "ckpt")
    if not (plain and ck):
        return "no rows"
    text = (f"{plain['model']} {plain['size']} bs{plain['batch']} train: memory {_gib(plain['mem_mib'])} plain vs "
            f"{_gib(ck['mem_mib'])} with checkpointing, speed ckpt/plain {_span([_ratio(report, 'grad', 'ckpt/plain')])}")
    if extra.get("largest_plain_batch"):
        text += (f"; largest batch that fits plain {extra['largest_plain_batch']} ({_gib(extra['plain_mib'])}), "
                 f"the same with checkpointing {_gib(extra['ckpt_mib'])}, checkpointing fits about "
                 f"{extra['largest_ckpt_batch_est']}")
    return text


def _summary_compile(report: dict, extra: dict) -> str:
    return (f"compile/eager forward {_span([_ratio(report, 'forward bf16 eager', 'ours+compile/ours')])}, train "
            f"{_span([_ratio(report, 'train bf16 eager', 'ours+compile/ours')])}")


SUMMARIES = {"vit": _summary_vit, "large": _summary_large, "lost": _summary_lost, "ckpt": _summary_ckpt,
             "compile": _summary_compile}


def _lost_agreement(C, dry: bool, device) -> dict:
    """Batched and image-by-image LOST give the same boxes (fp32)."""
    import torch

    from dense_adapters.nn import RegViT

    arch, patch, size, n = ("tiny-test", 16, 64, 3) if dry else ("small", 14, 518, 32)
    dim, depth, heads = C.vit_dims(arch)
    torch.manual_seed(1)
    vit = RegViT(embed_dim=dim, depth=depth, num_heads=heads, img_size=size, patch_size=patch,
                 num_register_tokens=4).to(device).eval()
    x = torch.randn(n, 3, size, size, device=device)
    a, b = C.lost_boxes(vit, x, True), C.lost_boxes(vit, x, False)
    return dict(images=n, equal_boxes=int((a == b).all(1).sum()))


def _fit_probe(C, device, arch: str, size: int, capacity_mib: Optional[float], max_batch: int) -> dict:
    """Gradient checkpointing at the largest batch that fits without it: the peak memory of one bf16 training
    step at batch 1 and 2 gives the memory per image; the largest plain batch within ``FIT_FRACTION`` of the
    GPU's memory (``capacity_mib`` elsewhere; at most ``max_batch``) is run (smaller while it does not fit), then
    the same batch with checkpointing. On the CPU (dry run) the memory figures are rough (resident-set growth)."""
    import torch

    from dense_adapters.benchmark import peak_memory_mib

    def peak(batch: int, ckpt: bool) -> float:
        w = C.backbone_case("p", "ours", arch, 16, size, batch, "train", dtype="bf16", grad_ckpt=ckpt).build(device)
        try:
            w.step()
            return peak_memory_mib(w.step, device) or 0.0
        finally:
            del w
            if device.type == "cuda":
                torch.cuda.empty_cache()

    if capacity_mib is None:
        capacity_mib = torch.cuda.get_device_properties(device).total_memory / 2**20
    cap = FIT_FRACTION * capacity_mib
    out = dict(arch=arch, size=size, cap_mib=round(cap))
    per = {}
    for ckpt in (False, True):
        m1, m2 = peak(1, ckpt), peak(2, ckpt)
        slope = max(m2 - m1, 1.0)
        per[ckpt] = (m1 - slope, slope)  # (fixed: weights, gradients, optimizer state; per image)
    fixed, slope = per[False]
    batch = int(min(max_batch, max(1, (cap - fixed) // slope)))
    for _ in range(4):
        try:
            out.update(largest_plain_batch=batch, plain_mib=round(peak(batch, False), 1))
            break
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            batch = max(1, int(batch * 0.85))
    else:
        return dict(out, error=f"fit probe: plain training did not fit even at batch {batch}")
    out["ckpt_mib"] = round(peak(batch, True), 1)
    fixed_c, slope_c = per[True]
    out["largest_ckpt_batch_est"] = int(max(1, (cap - fixed_c) // slope_c))
    out["mib_per_image"] = dict(plain=round(slope, 1), ckpt=round(slope_c, 1))
    return out


# ------------------------------------------------------------------------------------------- bf16 agreement
def bf16_agreement(dry: bool, weights_dir: Optional[str] = None, **_) -> dict:
    """Per-token cosine between fp32 features (TF32 off) and bf16 ones (autocast; bf16 weights) of the large
    presets at 1024 (random weights with LayerScale set to :data:`AGREEMENT_LAYERSCALE`, so every block
    contributes: at its 1e-5 initialisation the blocks are near identities and the check would see little;
    ``weights_dir`` holding ``<preset>.pth`` loads real weights instead)."""
    import torch
    import torch.nn.functional as F

    from dense_adapters.nn import PRESETS, create_regvit

    device = _device()
    presets = [p for p in AGREEMENT_PRESETS if p in PRESETS]
    if dry:
        presets = [p for p in presets if p in ("dinov2_vitl14_reg4", "dinov3_vitl16")]
    size = 64 if dry else 1024
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    results, problems = {}, []
    for name in presets:
        torch.manual_seed(0)
        with torch.device(device):  # parameters made (and initialised) where they run: fast for 1B+ models
            model = create_regvit(name, img_size=size, **(dict(embed_dim=64, depth=2, num_heads=2) if dry else {}))
        model.eval()
        src = "random"
        ckpt = osp.join(weights_dir, f"{name}.pth") if weights_dir else None
        if ckpt and osp.isfile(ckpt):
            from dense_adapters.nn import load_pretrained

            load_pretrained(model, ckpt)
            src = ckpt
        else:
            with torch.no_grad():
                for pname, p in model.named_parameters():
                    if pname.endswith(("ls1.gamma", "ls2.gamma")):
                        p.fill_(AGREEMENT_LAYERSCALE)
        x = torch.randn(1, 3, size, size, device=device)
        with torch.no_grad():
            ref = model(x).float()
            with torch.autocast(device.type, dtype=torch.bfloat16):
                amp = model(x).float()
            model.bfloat16()
            half = model(x.bfloat16()).float()
        p = model.num_prefix_tokens
        stats = {}
        for key, out in (("autocast", amp), ("bf16_weights", half)):
            cos = F.cosine_similarity(ref, out, dim=-1)[0]  # [N]
            patch = cos[p:]
            stats[key] = dict(patch_mean=float(patch.mean()), patch_min=float(patch.min()), cls=float(cos[0]),
                              finite=bool(torch.isfinite(out).all()))
            if not (stats[key]["finite"] and stats[key]["patch_mean"] >= MIN_COSINE_MEAN
                    and stats[key]["patch_min"] >= MIN_COSINE_MIN):
                problems.append(f"{name} {key}: cosine mean {stats[key]['patch_mean']:.4f} min "
                                f"{stats[key]['patch_min']:.4f} (need >= {MIN_COSINE_MEAN} / {MIN_COSINE_MIN})")
        results[name] = dict(stats, weights=src, size=size, params_m=round(sum(t.numel() for t in model.parameters())
                                                                             / 1e6, 1))
        del model, ref, amp, half
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if not presets:
        return dict(status="fail", line="no large preset found in dense_adapters.nn.PRESETS", result={})
    line = "; ".join(f"{n} {r['size']}: cos autocast {r['autocast']['patch_mean']:.5f} (min "
                     f"{r['autocast']['patch_min']:.4f}), bf16 weights {r['bf16_weights']['patch_mean']:.5f} (min "
                     f"{r['bf16_weights']['patch_min']:.4f})" for n, r in results.items())
    missing = [p for p in AGREEMENT_PRESETS if p not in PRESETS]
    if missing and not dry:
        line += f"; not available yet: {', '.join(missing)}"
    return dict(status="fail" if problems else "pass", line=("; ".join(problems) + " | " if problems else "") + line,
                result=dict(presets=results, random_weights_layerscale=AGREEMENT_LAYERSCALE, problems=problems))


# ----------------------------------------------------------------------------------- CUDA-only steps, prepared
def prep(step: str, work_dir: str, **_) -> dict:
    """What a CUDA-only step would run with, built and checked without CUDA (so the GPU path cannot rot)."""
    from dense_adapters.cli.runner import add_reliability, load_config
    from dense_adapters.engine.amp import amp_optim_wrapper_cfg
    from dense_adapters.utils import register_all_modules

    register_all_modules()
    config = osp.join(work_dir, "configs", "fsdp.py" if step == "fsdp" else "ade.py")
    cfg = load_config(config, launcher="pytorch" if step == "fsdp" else "none")
    problems, done = [], []
    if step == "train-fp16":
        ow = amp_optim_wrapper_cfg(cfg.optim_wrapper, "cuda", None)  # what --amp picks on CUDA
        if not (ow.get("type") == "AmpOptimWrapper" and ow.get("dtype") == "float16"
                and ow.get("loss_scale") == "dynamic"):
            problems.append(f"--amp on CUDA would train with {ow}")
        done.append(f"--amp on CUDA: {ow['type']} {ow.get('dtype')}, loss scale {ow.get('loss_scale')}")
    if step == "fsdp":
        import torch

        from dense_adapters.nn import RegViT
        from dense_adapters.registry import FUNCTIONS

        add_reliability(cfg, "train")
        st = cfg.get("strategy") or {}
        if cfg.get("runner_type") != "FlexibleRunner" or st.get("type") != "FSDPStrategy":
            problems.append(f"runner {cfg.get('runner_type')}, strategy {st.get('type')}: not FSDP")
        wrap = FUNCTIONS.get(st["model_wrapper"]["auto_wrap_policy"]["type"])
        check = FUNCTIONS.get(st["activation_checkpointing"]["check_fn"])
        vit = RegViT(embed_dim=32, depth=3, num_heads=2, img_size=32, patch_size=16)
        units = sum(bool(wrap(m, False, 0)) for m in vit.modules())
        recomputed = sum(bool(check(m)) for m in vit.modules())
        if units != 3 or recomputed != 3 or not all(wrap(m, True, 0) for m in vit.modules()):
            problems.append(f"wrap policy gives {units} FSDP units and {recomputed} recomputed blocks for 3 blocks")
        mp = st["model_wrapper"].get("mixed_precision") or {}
        if getattr(torch, mp.get("param_dtype", ""), None) is None:
            problems.append(f"mixed precision param_dtype {mp.get('param_dtype')!r} is not a torch dtype")
        done.append(f"FlexibleRunner + FSDPStrategy, one unit per block ({units}/3), checkpointed blocks "
                    f"{recomputed}/3, params {mp.get('param_dtype')}")
    return dict(status="fail" if problems else "skip",
                line=("; ".join(problems) if problems else "skipped (needs CUDA); prepared: " + ", ".join(done)),
                result=dict(prepared=done, problems=problems))


def data(work_dir: str, **_) -> dict:
    """The ADE20K-format sample the tool steps train and test on."""
    import glob

    from dense_adapters.datasets.samples.ade import make_ade_sample

    root = osp.join(work_dir, "data", "ADEChallengeData2016")
    if not osp.isdir(osp.join(root, "images")):
        make_ade_sample(osp.join(work_dir, "data"))
    n = {split: len(glob.glob(osp.join(root, "images", split, "*"))) for split in ("training", "validation")}
    ok = n["training"] > 0 and n["validation"] > 0
    return dict(status="pass" if ok else "fail", result=dict(root=root, **n),
                line=f"ADE sample: {n['training']} training + {n['validation']} validation images in {root}")


def _bench_worker(part: str):
    return lambda **kw: bench(part, **kw)


def _prep_worker(step: str):
    return lambda **kw: prep(step, **kw)


WORKERS = {"env": env, "data": data, "bf16-agreement": bf16_agreement,
           **{f"prep-{s}": _prep_worker(s) for s in ("train-fp16", "fsdp")},
           **{f"bench-{p}": _bench_worker(p) for p in GPU_CHECK_PARTS}}


def run_worker(name: str, out_dir: str, **kw) -> dict:
    """Run one worker (``WORKERS``) with its folder ``out_dir``; returns dict(status, line, result)."""
    if name not in WORKERS:
        raise KeyError(f"unknown worker {name!r}: one of {sorted(WORKERS)}")
    os.makedirs(out_dir, exist_ok=True)
    return WORKERS[name](out_dir=out_dir, **kw)
