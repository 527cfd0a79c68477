"""Test-only hooks, imported by the tests' configs (custom_imports=['reliability_hooks'])."""
import json
import os
import os.path as osp
import time

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class WaitToBeKilledHook(Hook):
    """Before iteration ``at`` (0-based): write ``marker`` and wait, so that the test can SIGKILL the process there."""

    def __init__(self, at: int, marker: str) -> None:
        self.at, self.marker = at, marker

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if runner.iter == self.at:
            with open(self.marker, "w") as f:
                f.write(str(os.getpid()))
            time.sleep(600)


@HOOKS.register_module()
class RecordLossHook(Hook):
    """Each rank appends (iteration, loss) to ``work_dir/losses_rank{r}.jsonl`` (rank 0 alone logs scalars)."""

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        path = osp.join(runner.work_dir, f"losses_rank{get_rank()}.jsonl")
        with open(path, "a") as f:
            f.write(json.dumps(dict(iter=runner.iter + 1, loss=float(outputs["loss"]))) + "\n")


@HOOKS.register_module()
class PoisonLossHook(Hook):
    """Multiplies the model's first trainable weight by NaN before iteration ``at``: the loss becomes NaN."""

    def __init__(self, at: int) -> None:
        self.at = at

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if runner.iter == self.at:
            model = runner.model.module if hasattr(runner.model, "module") else runner.model
            with torch.no_grad():
                next(p for p in model.parameters() if p.requires_grad).mul_(float("nan"))


class Marker:
    """A plain class: pickling an instance makes a checkpoint that weights_only loading refuses."""
