"""Stop training at the first non-finite loss or weights, and name a checkpoint that is really good.

A checkpoint is *good* once (1) its weights and optimizer state were finite when it was written and (2) training
from it gave a finite loss: the one written after iteration k becomes good when iteration k+1's loss is finite.
:class:`NanGuardHook` checks (1) just before every save (the save is not made when it fails) and (2) after every
iteration. When the loss diverges right after a checkpoint, that checkpoint is renamed ``*.diverged`` (so that
``--resume`` never picks it) and ``last_checkpoint`` points to the last good one again.
"""
from __future__ import annotations

import math
import os
import os.path as osp
from typing import Optional

import torch
from mmengine.dist import all_reduce, get_world_size, is_main_process
from mmengine.hooks import CheckpointHook, Hook
from mmengine.model import is_model_wrapper

from ..errors import UserError
from ..fileio import atomic_write
from ..registry import HOOKS

ADVICE = ("lower the learning rate (--cfg-options optim_wrapper.optimizer.lr=...; on --resume the new lr is applied "
          "to the schedule), add gradient clipping (optim_wrapper.clip_grad=dict(max_norm=1.0)) or check the data "
          "(tools/check_dataset.py)")


class NonFiniteLoss(UserError):
    """The training loss (or the weights) became NaN or infinite."""


def _as_float(v) -> Optional[float]:
    if isinstance(v, torch.Tensor):
        return float(v.detach().float().mean()) if v.numel() else None
    if isinstance(v, (int, float)):
        return float(v)
    return None


def first_non_finite(named_tensors) -> Optional[str]:
    """Name of the first floating tensor with a NaN/inf value in ``(name, tensor)`` pairs, or None."""
    for name, t in named_tensors:
        if isinstance(t, torch.Tensor) and t.is_floating_point() and t.numel() and not bool(torch.isfinite(t).all()):
            return name
    return None


def _optimizer_tensors(optim_wrapper):
    wrappers = getattr(optim_wrapper, "optim_wrappers", None)
    for prefix, w in (wrappers.items() if isinstance(wrappers, dict) else [("", optim_wrapper)]):
        opt = getattr(w, "optimizer", None)
        for i, state in enumerate(getattr(opt, "state", {}).values()):
            for k, v in state.items():
                yield f"optimizer{'.' + prefix if prefix else ''} state {i}.{k}", v


def _any(flag: bool) -> bool:
    if get_world_size() > 1:
        t = torch.tensor([float(flag)])
        all_reduce(t, op="sum")
        return t.item() > 0
    return flag


@HOOKS.register_module()
class NanGuardHook(Hook):
    """Raises :class:`NonFiniteLoss` naming the iteration, the bad terms and the last *good* checkpoint (see the
    module doc), or saying that there is none.

    Runs first after each iteration (``VERY_HIGH``), so CheckpointHook never saves after a non-finite loss; before a
    save it checks the weights and the optimizer state. In distributed runs the ranks agree (all-reduced flags), so
    every process stops at the same iteration. tools/train.py adds it to every config.
    """

    priority = "VERY_HIGH"

    def __init__(self) -> None:
        self.good: Optional[str] = None  # the newest checkpoint known good
        self.pending: Optional[str] = None  # written (finite) and not yet trained from
        self.resumed: Optional[str] = None  # the checkpoint this run resumed from (good in the run that wrote it)
        self._seen: set = set()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if getattr(runner, "_resume", False):
            self.resumed = str(getattr(runner, "_load_from", None) or "") or None
            self.pending = self.resumed
            if self.resumed:
                self._seen.add(self.resumed)

    def before_train(self, runner) -> None:
        last = runner.message_hub.get_info("last_ckpt")  # a resumed run's: written before it
        if last:
            self._seen.add(str(last))

    def _note_new_checkpoint(self, runner) -> None:
        last = runner.message_hub.get_info("last_ckpt")
        if last and last not in self._seen and osp.isfile(str(last)):
            self._seen.add(last)
            self.pending = str(last)

    # ---- every iteration: the loss --------------------------------------------------------------------------------
    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs: Optional[dict] = None) -> None:
        self._note_new_checkpoint(runner)
        losses = {k: _as_float(v) for k, v in (outputs or {}).items() if "loss" in k}
        bad = {k: v for k, v in losses.items() if v is not None and not math.isfinite(v)}
        if _any(bool(bad)) and not bad:
            bad = {"loss (on another rank)": float("nan")}
        if bad:
            terms = ", ".join(f"{k}={v}" for k, v in bad.items())
            self._stop(runner, f"non-finite loss at iteration {runner.iter + 1} ({terms})")
        if self.pending is not None:
            self.good, self.pending = self.pending, None
        if self._will_save(runner, by_epoch=False):
            self.check_state(runner, f"iteration {runner.iter + 1}")

    def after_train_epoch(self, runner) -> None:
        if self._will_save(runner, by_epoch=True):
            self.check_state(runner, f"epoch {runner.epoch + 1}")

    # ---- before a save: weights and optimizer state ---------------------------------------------------------------
    @staticmethod
    def _will_save(runner, by_epoch: bool) -> bool:
        for h in runner.hooks:
            if not isinstance(h, CheckpointHook) or h.by_epoch != by_epoch:
                continue
            if by_epoch and (h.every_n_epochs(runner, h.interval, h.save_begin)
                             or (h.save_last and h.is_last_train_epoch(runner))):
                return True
            if not by_epoch and (h.every_n_train_iters(runner, h.interval, h.save_begin)
                                 or (h.save_last and h.is_last_train_iter(runner))):
                return True
        return False

    def check_state(self, runner, when: str) -> None:
        """Stop (before the checkpoint is written) when a weight or an optimizer state tensor is not finite."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        name = first_non_finite(model.state_dict().items())
        if name is None and getattr(runner, "optim_wrapper", None) is not None:
            name = first_non_finite(_optimizer_tensors(runner.optim_wrapper))
        if _any(name is not None):
            what = name or "a tensor (on another rank)"
            self._stop(runner, f"non-finite weights after {when} ({what}) although the loss was finite; the "
                               "checkpoint of that step was not written", keep_pending=True)

    # ---- stopping -------------------------------------------------------------------------------------------------
    def _stop(self, runner, what: str, keep_pending: bool = False) -> None:
        notes = []
        if self.pending is not None and not keep_pending:
            if self.pending == self.resumed:
                notes.append(f"training from {self.pending} (resumed) diverged at once")
            else:
                moved = self._set_aside(runner, self.pending)
                notes.append(f"{self.pending} was written just before and training from it diverged at once"
                             + (f": renamed to {moved}" if moved else ""))
            self.pending = None
        elif self.pending is not None:  # finite and not trained from yet: all we know
            self.good, self.pending = self.pending, None
        if self.good is not None:
            where = f"the last good checkpoint is {self.good}"
        else:
            where = "there is no good checkpoint (" + ("none was written before" if not self._seen else
                                                       "the loss diverged right after each one") + ")"
        self._point_to_good(runner)
        raise NonFiniteLoss(f"{what}; training stopped, {'; '.join(notes + [where])}: {ADVICE}, then "
                            + ("continue with --resume" if self.good else "start again"))

    @staticmethod
    def _set_aside(runner, path: str) -> Optional[str]:
        if not is_main_process() or not osp.isfile(path):
            return None
        moved = f"{path}.diverged"
        try:
            os.replace(path, moved)
        except OSError:
            return None
        return moved

    def _point_to_good(self, runner) -> None:
        """``last_checkpoint`` (what ``--resume`` follows) names the last good checkpoint, or is removed."""
        if not is_main_process():
            return
        pointer = osp.join(runner.work_dir, "last_checkpoint")
        if not osp.isfile(pointer):
            return
        with open(pointer) as f:
            target = f.read().strip()
        if self.good and target != self.good:
            atomic_write(pointer, self.good)
        elif not self.good and target and target != self.resumed:
            os.remove(pointer)
        runner.message_hub.update_info("last_ckpt", self.good)
