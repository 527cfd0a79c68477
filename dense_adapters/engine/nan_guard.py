"""Stop training at the first non-finite loss, before a checkpoint with broken weights can be written."""
from __future__ import annotations

import math
import os.path as osp
from typing import Optional

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook

from ..errors import UserError
from ..registry import HOOKS


class NonFiniteLoss(UserError):
    """The training loss became NaN or infinite."""


def _as_float(v) -> Optional[float]:
    if isinstance(v, torch.Tensor):
        return float(v.detach().float().mean()) if v.numel() else None
    if isinstance(v, (int, float)):
        return float(v)
    return None


@HOOKS.register_module()
class NanGuardHook(Hook):
    """Raises :class:`NonFiniteLoss` naming the iteration, the bad loss terms and the last good checkpoint.

    Runs first after each iteration (``VERY_HIGH``), so CheckpointHook never saves the broken weights. In
    distributed runs the ranks agree (one all-reduce of a flag), so every process stops at the same iteration.
    tools/train.py adds it to every config.
    """

    priority = "VERY_HIGH"

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs: Optional[dict] = None) -> None:
        losses = {k: _as_float(v) for k, v in (outputs or {}).items() if "loss" in k}
        bad = {k: v for k, v in losses.items() if v is not None and not math.isfinite(v)}
        if get_world_size() > 1:
            flag = torch.tensor([float(bool(bad))])
            all_reduce(flag, op="sum")
            if flag.item() > 0 and not bad:
                bad = {"loss (on another rank)": float("nan")}
        if not bad:
            return
        last = runner.message_hub.get_info("last_ckpt")
        where = (f"the last good checkpoint is {last}" if last and osp.isfile(last)
                 else "no checkpoint was written yet")
        terms = ", ".join(f"{k}={v}" for k, v in bad.items())
        raise NonFiniteLoss(
            f"non-finite loss at iteration {runner.iter + 1} ({terms}); training stopped, {where}: lower the learning "
            "rate (optim_wrapper.optimizer.lr), add gradient clipping (optim_wrapper.clip_grad=dict(max_norm=1.0)) "
            "or check the data (tools/check_dataset.py), then continue with --resume")
