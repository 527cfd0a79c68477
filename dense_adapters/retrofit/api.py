"""``retrofit(RetrofitConfig(...))``: put SkipAt into a pretrained model by distilling Phi from its own attention.

Steps: build the teacher (preset or config + checkpoint) and choose the skipped blocks (given, or by adjacent-block
CKA); build the student (same weights, ``skip_layers``); measure the baselines on held-out images (Phi untrained,
identity reuse); train stage 1 and stage 2 on mmengine's Runner; measure again, count FLOPs, time teacher and
student side by side; write ``retrofit.pth``, ``report.json`` and ``retrofit.png`` into ``out``.
"""
from __future__ import annotations

import json
import os
import os.path as osp
import time
from dataclasses import asdict, dataclass, field
from typing import Optional, Sequence, Union

import torch

from ..fileio import atomic_write
from ..errors import UserError
from . import checkpoint as ckpt_io
from .adapters import make_adapter
from .data import RetrofitImages, heldout_batches, list_images, split_heldout
from .engine import (RetrofitModel, Stage1EvalHook, StageScheduleHook, build_runner, find_checkpoint,
                     init_distributed, make_optim_wrapper, unwrap)
from .report import gmacs, plot_report, throughput
from .select import adjacent_attn_cka, choose_skips
from .spec import ModelSpec, build_student, freeze, load_teacher_weights, parse_skip

# settings a resumed run must share with the run it continues
_RESUME_KEYS = ("spec", "checkpoint", "images", "val_images", "skip", "num_skip", "skip_mode", "size", "batch_size",
                "stage1_iters", "stage2_iters", "lr1", "lr2", "weight_decay", "train", "extra_lr_mult",
                "feature_blocks", "seed", "noise_sigma", "amp")


@dataclass
class RetrofitConfig:
    """Everything one retrofit run needs; the tool's options map one to one (``--help`` explains each)."""

    spec: ModelSpec
    images: str
    out: str
    checkpoint: Optional[str] = None
    source: str = "auto"
    trust_pickle: bool = False
    val_images: Optional[str] = None
    skip: Union[str, Sequence[int]] = "auto"
    num_skip: Optional[int] = None
    skip_mode: str = "parametric"
    size: int = 224
    batch_size: int = 32
    stage1_iters: int = 1000
    stage2_iters: int = 2000
    lr1: float = 1e-3
    lr2: float = 2e-4
    weight_decay: float = 1e-4
    train: Sequence[str] = ()
    extra_lr_mult: float = 0.1
    feature_blocks: Optional[Sequence[int]] = None
    noise_sigma: float = 25 / 255  # Uformer only: Gaussian noise on the inputs (0..1 scale)
    amp: bool = False
    num_workers: int = 2
    seed: int = 0
    launcher: str = "none"
    resume: bool = False
    log_interval: int = 50
    ckpt_interval: int = 500
    eval_batch: int = 8
    max_val_images: int = 64
    cka_batches: int = 4
    bench: bool = True
    bench_batch: int = 8
    bench_min_time: float = 0.5
    bench_repeats: int = 5
    device: Optional[str] = None
    extra_hooks: list = field(default_factory=list, repr=False)

    def resume_signature(self) -> dict:
        d = asdict(self)
        d["spec"] = dict(family=self.spec.family, **self.spec.meta())
        d["skip"] = self.skip if isinstance(self.skip, str) else list(self.skip)
        return json.loads(json.dumps({k: d[k] for k in _RESUME_KEYS}, default=list))


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _log(msg: str) -> None:
    if _rank() == 0:
        print(msg, flush=True)


def _check_out_dir(cfg: RetrofitConfig, work_dir: str) -> Optional[str]:
    """The checkpoint to resume from (or None); refuses to start over a previous run without --resume."""
    sig_path = osp.join(cfg.out, "retrofit_args.json")
    found = find_checkpoint(work_dir)
    if _rank() != 0:  # rank 0 checks (and may already have written the settings of this very run)
        return found if cfg.resume else None
    if not cfg.resume:
        if found or osp.isfile(sig_path):
            raise UserError(f"{cfg.out} already holds a retrofit run ({found or sig_path}): pass --resume to continue "
                            "it, or choose another --out")
        return None
    if osp.isfile(sig_path):
        with open(sig_path) as f:
            old = json.load(f)
        new = cfg.resume_signature()
        diff = [k for k in _RESUME_KEYS if old.get(k) != new.get(k)]
        if diff:
            k = diff[0]
            raise UserError(f"--resume with other settings than the run in {cfg.out}: {k} was {old.get(k)!r}, now "
                            f"{new.get(k)!r}; repeat the original options (or choose another --out)")
    if found is None:
        _log(f"note: no complete checkpoint in {work_dir}: starting from the beginning")
    return found


def _choose_skip_layers(cfg: RetrofitConfig, teacher, train_files: list[str]) -> tuple[list[int], dict]:
    if cfg.spec.family == "uformer":
        if cfg.skip not in ("auto", "all", "decoder", None):
            raise UserError("a Uformer skips attention in every decoder block: leave --skip out (or --skip decoder)")
        return [], {"mode": "decoder"}
    if not isinstance(cfg.skip, str):
        return parse_skip(",".join(str(int(i)) for i in cfg.skip), teacher.depth), {"mode": "explicit"}
    if cfg.skip != "auto":
        if cfg.num_skip is not None:
            raise UserError("--num-skip goes with --skip auto; with explicit blocks leave it out")
        return parse_skip(cfg.skip, teacher.depth), {"mode": "explicit"}
    if cfg.num_skip is None:
        raise UserError("--skip auto needs --num-skip K (how many blocks to skip)")
    n = cfg.cka_batches * max(4, cfg.eval_batch)
    ds = RetrofitImages(train_files, cfg.size, n, seed=cfg.seed + 7919)
    bs = max(4, cfg.eval_batch)
    dev = next(teacher.parameters()).device
    batches = (torch.stack([ds[j]["inputs"] for j in range(i, i + bs)]).to(dev) for i in range(0, n, bs))
    adjacent = adjacent_attn_cka(teacher, batches)
    chosen = choose_skips(adjacent, cfg.num_skip)
    _log("adjacent-block CKA of attention outputs: " + ", ".join(f"{i + 1}:{c:.3f}" for i, c in enumerate(adjacent))
         + f" -> skip {chosen}")
    return chosen, {"mode": "auto", "num_skip": cfg.num_skip, "adjacent_cka": {str(i + 1): c for i, c in
                                                                              enumerate(adjacent)}, "examples": n}


def retrofit(cfg: RetrofitConfig) -> dict:
    """Run the whole retrofit; returns the report (also written to ``cfg.out/report.json``)."""
    t_start = time.time()
    init_distributed(cfg.launcher)
    spec = cfg.spec
    work_dir = osp.join(cfg.out, "work")
    resume_from = _check_out_dir(cfg, work_dir)
    if cfg.stage1_iters < 0 or cfg.stage2_iters < 0 or cfg.stage1_iters + cfg.stage2_iters < 1:
        raise UserError("--stage1-iters and --stage2-iters must be >= 0 and not both 0")
    if cfg.batch_size < 1 or cfg.size < 8:
        raise UserError(f"--batch-size {cfg.batch_size} / --size {cfg.size}: need a batch >= 1 and a size >= 8")
    device = torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and cfg.launcher != "none":
        device = torch.device("cuda", torch.cuda.current_device())

    files = list_images(cfg.images)
    val_files = list_images(cfg.val_images) if cfg.val_images else None
    train_files, val_files = split_heldout(files, val_files)
    val_files = val_files[: cfg.max_val_images]
    restorer = spec.family == "uformer"

    teacher = spec.build()
    load_msg = load_teacher_weights(teacher, spec, cfg.checkpoint, cfg.source, cfg.trust_pickle)
    _log(f"teacher {spec.describe()}: {load_msg}")
    teacher = freeze(teacher).to(device)
    patch = getattr(teacher, "patch_size", None) or getattr(teacher, "size_multiple", 1)
    if cfg.size % patch:
        raise UserError(f"--size {cfg.size} is not a multiple of the patch size {patch}: use "
                        f"{max(patch, cfg.size // patch * patch)}")
    skip_layers, selection = _choose_skip_layers(cfg, teacher, train_files)
    student = build_student(teacher, spec, skip_layers, cfg.skip_mode, seed=cfg.seed).to(device)
    adapter = make_adapter(spec.family, student, skip_layers, cfg.feature_blocks)
    phi, extra = adapter.trainable(student, tuple(cfg.train))
    if not phi and not extra:
        raise UserError(f"skip mode {cfg.skip_mode!r} has no parameters to train: add --train norms (and/or "
                        "layerscale), or use --skip-mode parametric")
    student.requires_grad_(False)
    for p in [*phi, *extra]:
        p.requires_grad_(True)

    noise = cfg.noise_sigma if restorer else 0.0
    val = [x.to(device) for x in heldout_batches(val_files, cfg.size, cfg.eval_batch, normalize=not restorer,
                                                 noise_sigma=noise)]

    def evaluate(model) -> dict:
        return adapter.similarity(teacher, model, val)

    sims = {"untrained": evaluate(student.eval())}
    if not restorer and cfg.skip_mode == "parametric":
        sims["identity"] = evaluate(freeze(build_student(teacher, spec, skip_layers, "identity")).to(device))
    # (a Uformer decoder is twice as wide as the encoder output it reuses: without a trained lift there is no
    # identity baseline)
    student.train()

    if _rank() == 0:
        os.makedirs(cfg.out, exist_ok=True)
        atomic_write(osp.join(cfg.out, "retrofit_args.json"), json.dumps(cfg.resume_signature(), indent=1))
    world = int(os.environ.get("WORLD_SIZE", 1)) if cfg.launcher != "none" else 1
    iters = cfg.stage1_iters + cfg.stage2_iters
    dataset = RetrofitImages(train_files, cfg.size, iters * cfg.batch_size * world, seed=cfg.seed,
                             normalize=not restorer, noise_sigma=noise)
    model = RetrofitModel(adapter, teacher, student)
    ow = make_optim_wrapper(phi, extra, cfg.lr1, cfg.weight_decay, cfg.extra_lr_mult, cfg.amp, device)
    stage1_path = osp.join(work_dir, "stage1_similarity.json")
    hooks = [StageScheduleHook(cfg.stage1_iters, cfg.stage2_iters, cfg.lr1, cfg.lr2)]
    if cfg.stage1_iters and cfg.stage2_iters:
        hooks.append(Stage1EvalHook(cfg.stage1_iters, evaluate, stage1_path))
    runner = build_runner(model, dataset, work_dir, iters, ow, hooks + list(cfg.extra_hooks), cfg.batch_size,
                          cfg.num_workers, cfg.seed, cfg.launcher, resume_from, cfg.log_interval,
                          max(1, min(cfg.ckpt_interval, iters)), find_unused=bool(extra))
    t_train = time.time()
    runner.train()
    train_s = time.time() - t_train
    student = unwrap(runner.model).student.eval()
    if _rank() != 0:
        return {}

    sims["retrofit"] = evaluate(student)
    if osp.isfile(stage1_path):
        with open(stage1_path) as f:
            sims["stage1"] = json.load(f)
    x = val[0][: max(1, min(cfg.bench_batch, val[0].shape[0]))]
    flops = dict(teacher_gmacs=gmacs(teacher, x), student_gmacs=gmacs(student, x))
    if flops["teacher_gmacs"] and flops["student_gmacs"]:
        flops["ratio"] = flops["student_gmacs"] / flops["teacher_gmacs"]
    xb = x if x.shape[0] >= cfg.bench_batch else x.repeat((cfg.bench_batch + x.shape[0] - 1) // x.shape[0], 1, 1, 1)
    speed = None
    if cfg.bench:
        speed = throughput(teacher, student, xb[: cfg.bench_batch], device, "bf16" if cfg.amp else "fp32",
                           repeats=cfg.bench_repeats, min_time=cfg.bench_min_time, log=lambda m: None)
    meta = ckpt_io.save_retrofit(osp.join(cfg.out, "retrofit.pth"), student, spec)
    n_train = sum(p.numel() for p in [*phi, *extra])
    report = dict(
        model=spec.describe(), family=spec.family, preset=spec.preset, arch_kwargs=spec.arch_kwargs,
        checkpoint=cfg.checkpoint, skip_layers=meta["skip_layers"], skip_mode=cfg.skip_mode, selection=selection,
        heldout=dict(images=len(val_files), size=cfg.size, files=[osp.basename(f) for f in val_files]),
        train=dict(images=len(train_files), stage1_iters=cfg.stage1_iters, stage2_iters=cfg.stage2_iters,
                   batch_size=cfg.batch_size, processes=world, lr1=cfg.lr1, lr2=cfg.lr2, trained=["phi", *cfg.train],
                   trained_params=n_train, feature_blocks=getattr(adapter, "feature_blocks", None),
                   loss_stage1="relative MSE of Phi's output after LayerScale (teacher-forced)",
                   loss_stage2="cosine distance + relative MSE, patch tokens and cls, after the final norm",
                   seconds=round(train_s, 1), amp=cfg.amp, device=device.type),
        similarity=sims, flops=flops, throughput=speed, seconds=round(time.time() - t_start, 1),
        files=dict(checkpoint="retrofit.pth", report="report.json", plot="retrofit.png"),
    )
    atomic_write(osp.join(cfg.out, "report.json"), json.dumps(report, indent=1))
    plot_report(report, osp.join(cfg.out, "retrofit.png"))
    return report
