"""The retrofit's training run on mmengine's Runner: one iteration-based loop, stage 1 then stage 2.

* :class:`RetrofitModel` holds the student (a submodule: trained, checkpointed, wrapped in DDP) and the teacher
  outside the module tree (frozen, never saved or wrapped; moved to the inputs' device on first use).
* :class:`StageScheduleHook` picks the stage and sets the learning rate from the iteration number alone (linear
  warm-up, cosine decay, per stage), so a resumed run continues on exactly the same schedule.
* Exact resume comes from the toolkit's :class:`~dense_adapters.engine.checkpoint_resume.ExactResumeHook` and
  ``ResumableIterBasedTrainLoop`` together with the index-seeded samples of :mod:`.data`.
"""
from __future__ import annotations

import json
import math
import os
import os.path as osp
import time
from typing import Callable, Optional, Sequence

import torch
from mmengine.hooks import Hook
from mmengine.model import BaseModel, is_model_wrapper
from torch import Tensor, nn

from ..errors import UserError


class RetrofitModel(BaseModel):
    """``forward(inputs, mode='loss')`` -> the current stage's losses (``adapter.stage1`` / ``stage2``)."""

    def __init__(self, adapter, teacher: nn.Module, student: nn.Module) -> None:
        super().__init__()
        self.student = student
        self.__dict__["teacher"] = teacher  # not a submodule: not in state_dict, optimizer or DDP
        self.adapter = adapter
        self.stage = 1

    def init_weights(self) -> None:
        """Nothing: the student holds the teacher's weights (BaseModel's default would re-initialise the core's
        RegViT through its own ``init_weights``)."""

    def teacher_on(self, device: torch.device) -> nn.Module:
        t = self.__dict__["teacher"]
        if next(t.parameters()).device != device:
            t.to(device)
        return t

    def forward(self, inputs: Tensor, data_samples=None, mode: str = "loss") -> dict:
        if mode != "loss":
            raise ValueError(f"RetrofitModel only trains (mode='loss'), got mode={mode!r}")
        teacher = self.teacher_on(inputs.device)
        fn = self.adapter.stage1 if self.stage == 1 else self.adapter.stage2
        return fn(teacher, self.student, inputs)


def lr_at(it: int, stage1_iters: int, stage2_iters: int, lr1: float, lr2: float, warmup: float = 0.05,
          min_ratio: float = 0.01) -> tuple[int, float]:
    """(stage, learning rate) at 0-based iteration ``it``: per stage, linear warm-up over ``warmup`` of its
    iterations from 1% of the peak, then cosine decay to ``min_ratio`` of it."""
    stage, t, n, peak = (1, it, stage1_iters, lr1) if it < stage1_iters else (2, it - stage1_iters, stage2_iters, lr2)
    w = max(1, int(round(warmup * n))) if n > 1 else 0
    if t < w:
        return stage, peak * (0.01 + 0.99 * (t + 1) / w)
    frac = (t - w) / max(1, n - w - 1)
    return stage, peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if is_model_wrapper(model) else model


class StageScheduleHook(Hook):
    """Before each iteration: the stage of ``RetrofitModel`` and every group's ``lr`` (times its ``lr_mult``)."""

    priority = "VERY_HIGH"

    def __init__(self, stage1_iters: int, stage2_iters: int, lr1: float, lr2: float, warmup: float = 0.05) -> None:
        self.args = (stage1_iters, stage2_iters, lr1, lr2, warmup)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        stage, lr = lr_at(runner.iter, *self.args)
        unwrap(runner.model).stage = stage
        for g in runner.optim_wrapper.param_groups:
            g["lr"] = lr * g.get("lr_mult", 1.0)


class Stage1EvalHook(Hook):
    """At the end of stage 1 (rank 0): ``evaluate(student)`` written to ``work_dir/stage1_similarity.json``."""

    priority = "LOW"

    def __init__(self, stage1_iters: int, evaluate: Callable[[nn.Module], dict], path: str) -> None:
        self.stage1_iters, self.evaluate, self.path = stage1_iters, evaluate, path

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 != self.stage1_iters or runner.rank != 0:
            return
        student = unwrap(runner.model).student
        was = student.training
        student.eval()
        try:
            res = self.evaluate(student)
        finally:
            student.train(was)
        with open(self.path, "w") as f:
            json.dump(res, f)
        runner.logger.info(f"stage 1 done: held-out final patch cosine {res['final_patch_cos']:.4f}")


class InterruptAt(Hook):
    """Raise ``KeyboardInterrupt`` after iteration ``n`` (1-based) and its checkpoint: a stand-in for a killed run."""

    priority = 100  # after CheckpointHook (VERY_LOW = 90)

    def __init__(self, n: int) -> None:
        self.n = n

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 == self.n:
            raise KeyboardInterrupt(f"interrupted after iteration {self.n}")


def make_optim_wrapper(phi: Sequence[nn.Parameter], extra: Sequence[nn.Parameter], lr: float, weight_decay: float,
                       extra_lr_mult: float, amp: bool, device: torch.device, clip_grad: Optional[float] = 1.0):
    """AdamW over Phi (``weight_decay``) and the extra parameters (no decay, ``extra_lr_mult``), in an mmengine
    wrapper: plain, bf16 ``AmpOptimWrapper`` on CUDA, or bf16 autocast (``AutocastOptimWrapper``) on the CPU."""
    from mmengine.optim import AmpOptimWrapper, OptimWrapper

    from ..engine.amp import AutocastOptimWrapper

    groups = [dict(params=list(phi), weight_decay=weight_decay, lr_mult=1.0)]
    if extra:
        groups.append(dict(params=list(extra), weight_decay=0.0, lr_mult=extra_lr_mult))
    opt = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999))
    kw = dict(optimizer=opt, clip_grad=dict(max_norm=clip_grad) if clip_grad else None)
    if not amp:
        return OptimWrapper(**kw)
    if device.type == "cuda":
        return AmpOptimWrapper(dtype="bfloat16", **kw)
    return AutocastOptimWrapper(device_type=device.type, **kw)


def init_distributed(launcher: str) -> None:
    """torchrun (``launcher='pytorch'``): one process group, nccl with one GPU per process, or gloo on CPUs."""
    if launcher == "none":
        return
    if launcher != "pytorch":
        raise UserError(f"launcher {launcher!r}: the retrofit runs under torchrun (--launcher pytorch) or alone")
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return
    if "RANK" not in os.environ:
        raise UserError("--launcher pytorch outside torchrun: start with torchrun --nproc-per-node N ...")
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")


_RUNS = 0


def build_runner(model: RetrofitModel, dataset, work_dir: str, max_iters: int, optim_wrapper, hooks: list,
                 batch_size: int, num_workers: int, seed: int, launcher: str, resume_from: Optional[str],
                 log_interval: int, ckpt_interval: int, find_unused: bool):
    """mmengine Runner of the retrofit (iteration-based, DefaultSampler, exact resume, NaN guard, atomic
    checkpoints, resume through the safe loader)."""
    from ..engine.checkpoint_io import AtomicCheckpointHook, ContentHashHook
    from ..engine.checkpoint_resume import ExactResumeHook, ResumableIterBasedTrainLoop
    from ..engine.nan_guard import NanGuardHook
    from ..engine.safe_load import SafeLoadRunner, WeightsOnlyStateHook

    cuda = torch.cuda.is_available()
    wrapper = None
    if launcher != "none":
        wrapper = dict(type="MMDistributedDataParallel", find_unused_parameters=find_unused,
                       **({} if cuda else dict(device_ids=None)))
    os.makedirs(work_dir, exist_ok=True)
    global _RUNS
    _RUNS += 1
    # one process: a unique name, so that a second run within the same second gets its own logger and message hub
    # (mmengine keys them by name); distributed: None, mmengine broadcasts rank 0's timestamp
    name = None if launcher != "none" else f"retrofit_{time.strftime('%Y%m%d_%H%M%S')}_{os.getpid()}_{_RUNS}"
    return SafeLoadRunner(
        model=model,
        work_dir=work_dir,
        train_dataloader=dict(dataset=dataset, sampler=dict(type="DefaultSampler", shuffle=True, seed=seed),
                              batch_size=batch_size, num_workers=num_workers, persistent_workers=num_workers > 0,
                              pin_memory=cuda, drop_last=True, collate_fn=dict(type="default_collate")),
        train_cfg=dict(type=ResumableIterBasedTrainLoop, max_iters=max_iters),
        optim_wrapper=optim_wrapper,
        default_hooks=dict(timer=dict(type="IterTimerHook"),
                           logger=dict(type="LoggerHook", interval=log_interval, log_metric_by_epoch=False),
                           param_scheduler=dict(type="ParamSchedulerHook"),
                           checkpoint=dict(type=AtomicCheckpointHook, by_epoch=False, interval=ckpt_interval,
                                           max_keep_ckpts=2, save_last=True),
                           sampler_seed=dict(type="DistSamplerSeedHook")),
        custom_hooks=[NanGuardHook(), ExactResumeHook(), WeightsOnlyStateHook(), ContentHashHook(), *hooks],
        launcher=launcher,
        cfg=dict(model_wrapper_cfg=wrapper) if wrapper else None,  # the Runner reads the wrapper from its cfg
        env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend="nccl" if cuda else "gloo")),
        log_processor=dict(by_epoch=False, window_size=max(1, log_interval)),
        randomness=dict(seed=seed),
        resume=resume_from is not None,
        load_from=resume_from,
        # our scope: its registries reach mmseg's and mmengine's by parent; under "mmengine" a later build of
        # "dense_adapters.X" in the same process fails (mmengine finds scopes only among the root's children)
        default_scope="dense_adapters",
        experiment_name=name,
    )


def find_checkpoint(work_dir: str) -> Optional[str]:
    """The latest complete checkpoint of a retrofit work dir (see engine.checkpoint_io.find_resume_checkpoint)."""
    from ..engine.checkpoint_io import find_resume_checkpoint

    return find_resume_checkpoint(work_dir) if osp.isdir(work_dir) else None
