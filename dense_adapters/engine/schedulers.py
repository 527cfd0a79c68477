"""DINOv3's ``WarmupOneCycleLR`` (its ``eval/{segmentation,depth}/schedulers.py``) as mmengine parameter schedulers.

DINOv3 drives one torch scheduler that sets both the learning rate and AdamW's beta1 at every step ``s``:

- warm-up (``s < warmup_iters``), with ``warmup_ratio`` r > 0:
  ``lr = max_lr * (1 - (1 - s/W)(1 - r)) * (1 - s/T)``; with r = 0:
  ``lr = max_lr / final_div + max_lr * (1 + cos(pi s/T)) / 2 * s/W``; beta1 is set to 0 during the warm-up
  (``use_beta1``: the code's momentum is only computed after it);
- afterwards: ``lr`` cosine from ``max_lr`` to ``max_lr / div_factor / final_div_factor`` over ``(s + 1)/T``, and
  beta1 cosine from ``base_momentum`` to ``max_momentum`` over ``(s - W)/(T - W)``.

mmengine schedules one parameter per scheduler, so the lr and the momentum are two registered classes sharing
:func:`warmup_one_cycle`; give both the same arguments. ``lag`` shifts the step: DINOv3's segmentation loop steps the
scheduler after every iteration but the first (``lag=1``), its depth loop after every iteration (``lag=0``).
"""
from __future__ import annotations

import math

from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.momentum_scheduler import MomentumSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler

from ..errors import UserError
from ..registry import PARAM_SCHEDULERS


def _cos(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def warmup_one_cycle(step: int, *, max_lr: float, total_steps: int, warmup_iters: int = 0,
                     warmup_ratio: float = 0.0, div_factor: float = 25.0, final_div_factor: float = 1000.0,
                     base_momentum: float = 0.85, max_momentum: float = 0.95) -> tuple[float, float]:
    """(lr, beta1) of DINOv3's WarmupOneCycleLR (cosine annealing) at scheduler step ``step``."""
    s, T, W = step, float(total_steps), warmup_iters
    if s < W:
        if warmup_ratio:
            lr = max_lr * (1 - (1 - s / W) * (1 - warmup_ratio)) * (1 - s / T)
        else:
            lr = max_lr / final_div_factor + max_lr * (1 + math.cos(math.pi * s / T)) / 2 * s / W
        return lr, 0.0
    min_lr = max_lr / div_factor / final_div_factor
    return _cos(max_lr, min_lr, (s + 1) / T), _cos(base_momentum, max_momentum, (s - W) / (T - W))


class _WarmupOneCycle(_ParamScheduler):
    """The shared part: the arguments of DINOv3's scheduler (``total_steps`` = its ``total_iter``); the mixins give
    ``param_name``."""

    value_index = 0  # 0: lr, 1: momentum

    def __init__(self, optimizer, param_name: str, *, total_steps: int, warmup_iters: int = 0, warmup_ratio: float = 0.0,
                 div_factor: float = 25.0, final_div_factor: float = 1000.0, base_momentum: float = 0.85,
                 max_momentum: float = 0.95, lag: int = 0, begin: int = 0, end: int = INF, last_step: int = -1,
                 by_epoch: bool = False, verbose: bool = False) -> None:
        if total_steps <= 0 or not 0 <= warmup_iters < total_steps:
            raise UserError(f"WarmupOneCycle needs total_steps > warmup_iters >= 0, got {total_steps} and "
                            f"{warmup_iters}")
        self.kwargs = dict(total_steps=total_steps, warmup_iters=warmup_iters, warmup_ratio=warmup_ratio,
                           div_factor=div_factor, final_div_factor=final_div_factor, base_momentum=base_momentum,
                           max_momentum=max_momentum)
        self.lag = lag
        super().__init__(optimizer, param_name, begin=begin, end=end, last_step=last_step, by_epoch=by_epoch,
                         verbose=verbose)

    def _get_value(self) -> list:
        step = min(max(self.last_step - self.lag, 0), self.kwargs["total_steps"])
        # max_lr: each group's configured lr (mmengine keeps it as initial_lr once an lr scheduler is built)
        return [warmup_one_cycle(step, max_lr=group.get("initial_lr", group["lr"]), **self.kwargs)[self.value_index]
                for group in self.optimizer.param_groups]


@PARAM_SCHEDULERS.register_module()
class WarmupOneCycleLR(LRSchedulerMixin, _WarmupOneCycle):
    """The learning rate of DINOv3's WarmupOneCycleLR; the group's configured lr is ``max_lr``."""

    value_index = 0


@PARAM_SCHEDULERS.register_module()
class WarmupOneCycleMomentum(MomentumSchedulerMixin, _WarmupOneCycle):
    """AdamW's beta1 (SGD's momentum) as DINOv3's WarmupOneCycleLR sets it (``use_beta1=True``): 0 during the
    warm-up, then cosine from ``base_momentum`` to ``max_momentum``."""

    value_index = 1
