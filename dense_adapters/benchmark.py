"""Side-by-side speed measurements: our RegViT vs timm's and mmseg's ViT, SkipAt vs attention, ADE20K train steps.

A :class:`Case` is one thing to time (a model, an input, a mode); a :class:`Group` holds cases that are compared
with each other. Cases of a group are built together and timed *interleaved* (A B C A B C ...), so a noisy or
shared machine slows them alike and the ratios inside a group stay fair. Per case: warm-up steps, then
``repeats`` timed runs of ``iters`` steps each; the step time is the median over repeats, the spread their
inter-quartile range. Devices are synchronised before and after each timed run (never inside it).

Peers (:func:`backbone_case`): ``impl='ours'`` (:class:`dense_adapters.nn.RegViT`), ``'timm'``
(``timm.models.vision_transformer.VisionTransformer``) and ``'mmseg'`` (``mmseg.models.backbones.
VisionTransformer``), built with the same width, depth, heads, patch and tokens. timm's weights are converted
into ours and mmseg's (:func:`timm_to_mmseg`), so the three compute the same function (a test checks it).
"""
from __future__ import annotations

import contextlib
import ctypes
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import torch
from torch import Tensor, nn

from .nn import RegViT
from .nn.convert import adapt_to_model, convert_timm
from .nn.vit import ARCHS

IMPLS = ("ours", "timm", "mmseg")
MODES = ("forward", "train")
DTYPES = ("fp32", "bf16")
SKIPAT_DEFAULT = (3, 4, 5, 6, 7, 8)  # SkipAt paper, ViT with 12 blocks (0-based)


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


# ------------------------------------------------------------------------------------------------ models
def vit_dims(arch: str) -> tuple[int, int, int]:
    """(embed_dim, depth, heads) of an ``ARCHS`` name, or of 'tiny-test' (64, 4, 2) for unit tests."""
    if arch == "tiny-test":
        return 64, 4, 2
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}: use one of {sorted(ARCHS)} or 'tiny-test'")
    dim, depth, heads, ffn = ARCHS[arch]
    if ffn != "mlp":
        raise ValueError(f"arch {arch!r} uses a {ffn} FFN, which timm/mmseg peers do not share: pick another")
    return dim, depth, heads


def model_name(arch: str, patch: int, registers: int = 0, skip: bool = False) -> str:
    letter = {"tiny": "Ti", "small": "S", "base": "B", "large": "L"}.get(arch, arch)
    return f"ViT-{letter}/{patch}" + (f"+reg{registers}" if registers else "") + ("+SkipAt" if skip else "")


def skip_layers_for(depth: int) -> tuple[int, ...]:
    """SkipAt's default blocks 3..8 for 12 blocks; for shallower test models the middle half."""
    if depth == 12:
        return SKIPAT_DEFAULT
    return tuple(range(max(1, depth // 4), max(2, depth - depth // 4)))


def build_timm_vit(arch: str, patch: int, size: int, registers: int = 0) -> nn.Module:
    """timm ViT laid out as ours: cls + registers, patch-only position embedding, no head, final norm."""
    from timm.models.vision_transformer import VisionTransformer

    dim, depth, heads = vit_dims(arch)
    return VisionTransformer(img_size=size, patch_size=patch, embed_dim=dim, depth=depth, num_heads=heads,
                             reg_tokens=registers, no_embed_class=True, num_classes=0, global_pool="")


def build_mmseg_vit(arch: str, patch: int, size: int) -> nn.Module:
    """mmseg's ViT backbone with the same math as timm's (LN eps 1e-6, patch bias, final norm, last block out)."""
    from . import registry  # noqa: F401  (mmseg imports under mmcv-lite only after this)
    from mmseg.models.backbones import VisionTransformer

    dim, depth, heads = vit_dims(arch)
    return VisionTransformer(img_size=size, patch_size=patch, embed_dims=dim, num_layers=depth, num_heads=heads,
                             out_indices=(depth - 1,), final_norm=True, patch_bias=True,
                             norm_cfg=dict(type="LN", eps=1e-6))


def timm_to_mmseg(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """State dict of :func:`build_timm_vit` (no registers) -> mmseg ViT keys (as mmseg's vit2mmseg converter)."""
    if "reg_token" in sd:
        raise ValueError("mmseg's VisionTransformer has no register tokens: convert a model built with registers=0")
    out = {"cls_token": sd["cls_token"],
           # mmseg embeds cls too; timm's no_embed_class has no cls entry, so it is zero
           "pos_embed": torch.cat([torch.zeros_like(sd["cls_token"]), sd["pos_embed"]], dim=1),
           "patch_embed.projection.weight": sd["patch_embed.proj.weight"],
           "patch_embed.projection.bias": sd["patch_embed.proj.bias"],
           "ln1.weight": sd["norm.weight"], "ln1.bias": sd["norm.bias"]}
    names = {"norm1": "ln1", "norm2": "ln2", "attn.qkv": "attn.attn.in_proj", "attn.proj": "attn.attn.out_proj",
             "mlp.fc1": "ffn.layers.0.0", "mlp.fc2": "ffn.layers.1"}
    for k, v in sd.items():
        if not k.startswith("blocks."):
            continue
        _, i, rest = k.split(".", 2)
        sub, kind = rest.rsplit(".", 1)
        new = names[sub]
        kind = {"attn.attn.in_proj": {"weight": "_weight", "bias": "_bias"}}.get(new, {}).get(kind, "." + kind)
        out[f"layers.{i}.{new}{kind}"] = v
    return out


def build_peers(arch: str, patch: int, size: int, registers: int = 0, impls: Sequence[str] = IMPLS,
                skip: bool = False) -> dict[str, nn.Module]:
    """The requested implementations with shared weights (timm's, converted); SkipAt only exists in ours."""
    bad = set(impls) - set(IMPLS)
    if bad:
        raise ValueError(f"unknown impl {sorted(bad)}: use {IMPLS}")
    if skip and set(impls) != {"ours"}:
        raise ValueError("SkipAt exists only in our ViT: use impls=('ours',) with skip=True")
    if registers and "mmseg" in impls:
        raise ValueError("mmseg's VisionTransformer has no register tokens: drop 'mmseg' or set registers=0")
    ref = build_timm_vit(arch, patch, size, registers)
    out: dict[str, nn.Module] = {}
    if "timm" in impls:
        out["timm"] = ref
    if "ours" in impls:
        dim, depth, heads = vit_dims(arch)
        ours = RegViT(arch="small", embed_dim=dim, depth=depth, num_heads=heads, img_size=size, patch_size=patch,
                      num_register_tokens=registers, skip_layers=skip_layers_for(depth) if skip else ())
        sd, _ = adapt_to_model(convert_timm(ref.state_dict()), ours, "timm")
        ours.load_state_dict(sd, strict=not skip)
        out["ours"] = ours
    if "mmseg" in impls:
        mm = build_mmseg_vit(arch, patch, size)
        mm.load_state_dict(timm_to_mmseg(ref.state_dict()), strict=True)
        out["mmseg"] = mm
    return out


def features(impl: str, model: nn.Module, x: Tensor) -> Tensor:
    """Last-block tokens after the final norm as each implementation returns them for dense use."""
    if impl == "timm":
        return model.forward_features(x)  # [B, P + N, C]
    if impl == "mmseg":
        return model(x)[0]  # [B, C, h, w]
    return model(x)  # ours: [B, P + N, C]


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
    """bf16 autocast on the device's type, or a null context for fp32."""
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}: use one of {DTYPES}")
    return torch.autocast(device.type, dtype=torch.bfloat16) if dtype == "bf16" else contextlib.nullcontext()


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
        raise ValueError(f"unknown mode {mode!r}: use one of {MODES}")
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)

    def step() -> None:
        with autocast(device, dtype):
            out = fn(x)
        out.float().square().mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def maybe_compile(model: nn.Module, enabled: bool) -> nn.Module:
    return torch.compile(model) if enabled else model


_GMACS_CACHE: dict = {}


def backbone_case(label: str, impl: str, arch: str, patch: int, size: int, batch: int, mode: str,
                  registers: int = 0, skip: bool = False, dtype: str = "fp32", compile: bool = False) -> Case:
    """A ViT backbone case: random images [batch, 3, size, size] through ``impl``'s ViT."""

    def build(device: torch.device) -> Workload:
        torch.manual_seed(0)
        model = build_peers(arch, patch, size, registers, (impl,), skip)[impl].to(device)
        x = torch.randn(batch, 3, size, size, device=device)
        run = maybe_compile(model, compile)
        step = make_step(lambda t: features(impl, run, t), model, x, mode, dtype, device)
        key = (impl, arch, patch, size, registers, skip)

        def flops() -> float:
            if key not in _GMACS_CACHE:
                _GMACS_CACHE[key] = count_gmacs(model, (x[:1],))
            return _GMACS_CACHE[key]

        return Workload(model, step, batch, flops)

    return Case(label, model_name(arch, patch, registers, skip) + ("" if impl == "ours" else f" ({impl})"),
                str(size), batch, mode, dtype, compile, build)


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


# ------------------------------------------------------------------------------------- ADE20K train step
def shrink_seg_model(model_cfg: dict, dim: int = 64, depth: int = 4, heads: int = 2) -> None:
    """Make a segmentation config's model tiny in place (unit tests): backbone, neck and heads to width ``dim``."""
    from .nn import PRESETS

    bb = model_cfg["backbone"]
    old = bb.get("embed_dim") or ARCHS[bb.get("arch") or PRESETS[bb["preset"]]["arch"]][0]
    bb.update(embed_dim=dim, depth=depth, num_heads=heads)
    if len(bb.get("out_indices", ())) > 1:
        bb["out_indices"] = tuple(range(depth - len(bb["out_indices"]), depth))
    if bb.get("skip_layers"):
        bb["skip_layers"] = skip_layers_for(depth)
    for key in ("neck", "decode_head", "auxiliary_head"):
        part = model_cfg.get(key)
        if not part:
            continue
        v = part.get("in_channels")
        if isinstance(v, (list, tuple)):
            part["in_channels"] = [dim if c == old else c for c in v]
        elif v == old:
            part["in_channels"] = dim
        if "out_channels" in part:
            part["out_channels"] = dim
        if "channels" in part:
            part["channels"] = 16


def autocast_optim_wrapper(model: nn.Module, optim_cfg: dict, device: torch.device, dtype: str):
    """mmengine ``OptimWrapper`` of ``optim_cfg`` whose forward runs under bf16 autocast on any device
    (``dense_adapters.AutocastOptimWrapper``, what ``tools/train.py --amp`` uses on the CPU)."""
    from mmengine.optim import build_optim_wrapper

    from .utils import register_all_modules

    if dtype == "fp32":
        return build_optim_wrapper(model, optim_cfg)
    if optim_cfg.get("type", "OptimWrapper") != "OptimWrapper":
        raise ValueError(f"bf16 autocast wraps a plain OptimWrapper, the config uses {optim_cfg.get('type')}")
    register_all_modules()
    return build_optim_wrapper(model, dict(optim_cfg, type="dense_adapters.AutocastOptimWrapper",
                                           device_type=device.type))


def seg_case(label: str, config: str, batch: int, dtype: str = "fp32", compile: bool = False,
             tiny: bool = False, crop: Optional[int] = None) -> Case:
    """One mmseg training step (data preprocessor, forward, losses, backward, AdamW) of a config's model.

    The model is built with the backbone's ``init_cfg=None`` (random weights: speed only), SyncBN as BN;
    the batch is random uint8 images and labels of the config's crop size (``crop`` overrides it).
    """
    import os.path as osp

    if not osp.isfile(config):
        raise FileNotFoundError(f"config not found: {config}: give the path of a file in configs/")
    if batch < 2:
        raise ValueError(f"batch={batch}: a training step needs >= 2 images (BatchNorm of UPerNet's 1x1 pooling "
                         "branch cannot train on one): use --batch 2 or more")

    def build(device: torch.device) -> Workload:
        from mmengine.config import Config
        from mmengine.structures import PixelData

        from .utils import register_all_modules

        register_all_modules()
        from mmseg.registry import MODELS
        from mmseg.structures import SegDataSample

        from .utils import replace_syncbn

        cfg = Config.fromfile(config)
        mcfg = cfg.model.to_dict() if hasattr(cfg.model, "to_dict") else dict(cfg.model)
        mcfg["backbone"]["init_cfg"] = None
        replace_syncbn(mcfg)  # SyncBN needs a process group; one process uses BN (same cost per device)
        if tiny:
            shrink_seg_model(mcfg)
        size = crop or mcfg["data_preprocessor"]["size"][0]
        mcfg["data_preprocessor"]["size"] = (size, size)
        torch.manual_seed(0)
        model = MODELS.build(mcfg).to(device)
        model.train()
        optim = autocast_optim_wrapper(model, dict(cfg.optim_wrapper), device, dtype)
        num_classes = mcfg["decode_head"]["num_classes"]

        def sample() -> SegDataSample:
            ds = SegDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size)))
            ds.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, size, size), device=device))
            return ds

        data = dict(inputs=[torch.randint(0, 256, (3, size, size), dtype=torch.uint8, device=device)
                            for _ in range(batch)], data_samples=[sample() for _ in range(batch)])
        if compile:  # the backbone, in place (state-dict keys unchanged). mmengine's cfg.compile compiles
            model.backbone.compile()  # train_step, which fails in torch 2.14 on the optimizer step

        def step() -> None:
            model.train_step(data, optim)

        def flops() -> float:
            x = model.data_preprocessor(dict(inputs=data["inputs"][:1], data_samples=None), False)["inputs"]
            return count_gmacs(model, (x,))

        return Workload(model, step, batch, flops)

    name = osp.splitext(osp.basename(config))[0] + (" (tiny)" if tiny else "")
    return Case(label, name, str(crop) if crop else "crop", batch, "train", dtype, compile, build)


# ------------------------------------------------------------------------------------------ LOST, Uformer
def lost_case(label: str, arch: str, patch: int, size: int, registers: int = 4, with_lost: bool = True,
              dtype: str = "fp32") -> Case:
    """LOST on one image batch: keys of the last block (``extract_features``) and, with ``with_lost``, the
    seed/expansion/box steps of :func:`dense_adapters.discovery.lost`."""

    def build(device: torch.device) -> Workload:
        from .discovery import extract_features, lost

        dim, depth, heads = vit_dims(arch)
        torch.manual_seed(0)
        vit = RegViT(embed_dim=dim, depth=depth, num_heads=heads, img_size=size, patch_size=patch,
                     num_register_tokens=registers).to(device).eval()
        x = torch.randn(1, 3, size, size, device=device)

        def step() -> None:
            with autocast(device, dtype):
                feats, hw = extract_features(vit, x, "k", -1)
            if with_lost:
                lost(feats, hw)

        return Workload(vit, step, 1, None)

    return Case(label, model_name(arch, patch, registers) + (" +LOST" if with_lost else " keys only"),
                str(size), 1, "forward", dtype, False, build)


def uformer_case(label: str, preset: str, size: int, batch: int, mode: str, skip: bool,
                 dtype: str = "fp32", compile: bool = False, tiny: bool = False) -> Case:
    """Uformer (``create_uformer(preset)``) with or without SkipAt in the decoder, on noisy images [B, 3, s, s]."""

    def build(device: torch.device) -> Workload:
        from .nn.uformer import create_uformer

        torch.manual_seed(0)
        extra = dict(embed_dim=8, depths=(1,) * 5) if tiny else {}
        model = create_uformer(preset, skip_mode="parametric" if skip else None, **extra).to(device)
        x = torch.rand(batch, 3, size, size, device=device)
        run = maybe_compile(model, compile)
        return Workload(model, make_step(run, model, x, mode, dtype, device), batch,
                        lambda: count_gmacs(model, (x[:1],)))

    return Case(label, f"Uformer-{preset}" + (" (tiny)" if tiny else "") + ("+SkipAt" if skip else ""),
                str(size), batch, mode, dtype, compile, build)
