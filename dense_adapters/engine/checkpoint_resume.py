"""Exact resume of iteration-based training: random-number states in checkpoints and a fast, exact data skip.

mmengine 0.10.7 resumes the weights, optimizer, schedulers and message hub, then re-seeds and *replays* the
dataloader for every iteration already done (the whole data pipeline runs again: slow on long runs), and the
random-number streams after resume are not those of the uninterrupted run (dropout, drop-path and random
augmentations differ). Here:

* :class:`ExactResumeHook` stores every rank's torch / NumPy / Python (and CUDA) random states in each checkpoint
  (``checkpoint['rng_state']``) and keeps validation from disturbing the training streams (a validation run is
  random-state neutral, so resuming after a checkpoint that was followed by validation is still exact);
* :class:`ResumableIterBasedTrainLoop` skips the iterations already done by advancing the *sampler* only (indices,
  no image decoding), then restores the random states saved in the checkpoint before the first new batch.

With ``num_workers=0`` a run killed and resumed ends with the same weights and losses as an uninterrupted one
(tests/reliability/test_resume.py). With worker processes the data order is still exact, but workers restart their
(seeded) augmentation streams at the resume point; ``fast_forward='replay'`` keeps mmengine's replay instead.
"""
from __future__ import annotations

import itertools
import logging
import random
from typing import Iterator, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.runner.loops import IterBasedTrainLoop, _InfiniteDataloaderIterator

from ..errors import UserError
from ..registry import HOOKS, LOOPS


def get_rng_state() -> dict:
    """This process's random states as plain tensors/tuples (loadable with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = dict(torch=torch.get_rng_state(), python=random.getstate(),
                 numpy=(kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)))
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()  # this process's device only (no contexts on other GPUs)
    return state


def set_rng_state(state: dict) -> None:
    """Inverse of :func:`get_rng_state`."""
    torch.set_rng_state(state["torch"].cpu())
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"].cpu())


def _checkpoint_hooks(runner) -> list:
    return [h for h in runner.hooks if isinstance(h, CheckpointHook)]


@HOOKS.register_module()
class ExactResumeHook(Hook):
    """Saves all ranks' random states in checkpoints; makes validation random-state neutral (tools/train.py adds
    it to every config)."""

    priority = "LOW"  # after the optimizer step and logging, before CheckpointHook (VERY_LOW)

    def __init__(self) -> None:
        self._all_states: Optional[list] = None  # per rank, gathered just before a checkpoint is written
        self._loaded: Optional[dict] = None  # 'rng_state' of the checkpoint resumed from
        self._val_state: Optional[dict] = None

    # ---- saving ----
    def _gather(self) -> None:
        state = get_rng_state()
        self._all_states = all_gather_object(state) if get_world_size() > 1 else [state]

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        # CheckpointHook saves on rank 0 only: collect every rank's states (a collective) when it is about to save
        if any(not h.by_epoch and (h.every_n_train_iters(runner, h.interval, h.save_begin)
                                   or (h.save_last and h.is_last_train_iter(runner)))
               for h in _checkpoint_hooks(runner)):
            self._gather()

    def after_train_epoch(self, runner) -> None:
        if any(h.by_epoch and (h.every_n_epochs(runner, h.interval, h.save_begin)
                               or (h.save_last and h.is_last_train_epoch(runner)))
               for h in _checkpoint_hooks(runner)):
            self._gather()

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        states = self._all_states or [get_rng_state()]  # a save outside CheckpointHook: this rank's states
        checkpoint["rng_state"] = dict(world_size=len(states), ranks=states)
        self._all_states = None

    # ---- validation must not move the training streams ----
    def before_val(self, runner) -> None:
        self._val_state = get_rng_state()

    def after_val(self, runner) -> None:
        if self._val_state is not None:
            set_rng_state(self._val_state)
            self._val_state = None

    # ---- loading ----
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._loaded = checkpoint.get("rng_state")

    def restore(self, runner) -> bool:
        """Set this rank's random states from the checkpoint resumed from; False (with a warning) if it has none."""
        saved, self._loaded = self._loaded, None
        if not saved:
            print_log("the checkpoint holds no random states (written without ExactResumeHook): data order is "
                      "exact, but dropout and random augmentation after the resume differ from an uninterrupted run",
                      logger="current", level=30)
            return False
        if saved["world_size"] != get_world_size():
            print_log(f"the checkpoint was written by {saved['world_size']} processes, this run has "
                      f"{get_world_size()}: random states are not restored", logger="current", level=30)
            return False
        set_rng_state(saved["ranks"][get_rank()])
        return True


class _SkipFirst:
    """Wraps a sampler so that its next pass starts ``n`` indices in; later passes are the sampler's own."""

    def __init__(self, sampler, n: int) -> None:
        self.sampler, self.n = sampler, n

    def __iter__(self) -> Iterator[int]:
        it = iter(self.sampler)
        n, self.n = self.n, 0
        return itertools.islice(it, n, None)

    def __len__(self) -> int:
        return len(self.sampler)

    def __getattr__(self, name: str):  # set_epoch, seed, ... of the wrapped sampler
        if name == "sampler":
            raise AttributeError(name)
        return getattr(self.sampler, name)


@LOOPS.register_module()
class ResumableIterBasedTrainLoop(IterBasedTrainLoop):
    """``IterBasedTrainLoop`` whose resume skips data by sampler indices and restores the saved random states.

    Args:
        fast_forward: ``'sampler'`` (default) advances the batch sampler without loading data; ``'replay'`` runs
            the data pipeline for every skipped batch (mmengine's way; needed only for custom batch samplers).
        other arguments: as :class:`mmengine.runner.IterBasedTrainLoop`.
    """

    def __init__(self, *args, fast_forward: str = "sampler", **kwargs) -> None:
        if fast_forward not in ("sampler", "replay"):
            raise UserError(f"fast_forward must be 'sampler' or 'replay', got {fast_forward!r}")
        super().__init__(*args, **kwargs)
        self.fast_forward = fast_forward

    def _skip_by_sampler(self, n: int) -> bool:
        """Position the dataloader after ``n`` batches exactly where ``_InfiniteDataloaderIterator`` would be, by
        sampler indices alone. Knows mmengine's InfiniteSampler and DefaultSampler under a plain torch
        ``BatchSampler``; returns False for anything else (the caller then replays)."""
        from mmengine.dataset import DefaultSampler, InfiniteSampler

        loader = self.dataloader
        bsampler = getattr(loader, "batch_sampler", None)
        if type(bsampler) is not torch.utils.data.BatchSampler:
            return False
        sampler, bs = bsampler.sampler, bsampler.batch_size
        if isinstance(sampler, InfiniteSampler):
            # one shared index generator for the whole run (``sampler.indices``): start a fresh one and advance it;
            # the iterator built before the resume holds (and on deletion closes) the old one
            sampler.indices = sampler._indices_of_rank()
            for _ in itertools.islice(sampler.indices, n * bs):
                pass
            epoch = 0
        elif isinstance(sampler, DefaultSampler):
            per_epoch = len(bsampler)  # batches per epoch, drop_last respected
            epoch, done = divmod(n, per_epoch)
            if done == 0 and epoch > 0:  # at an epoch's end: let the iterator restart it, as the uninterrupted run
                epoch, done = epoch - 1, per_epoch
            sampler.set_epoch(epoch)
            bsampler.sampler = _SkipFirst(sampler, done * bs)
        else:
            return False
        self.dataloader_iterator = _InfiniteDataloaderIterator(loader)
        self.dataloader_iterator._epoch = epoch
        return True

    def _resume_position(self) -> None:
        n = self._iter
        if self.fast_forward == "sampler" and self._skip_by_sampler(n):
            print_log(f"resume: skipped {n} batches by sampler indices (no data loaded)", logger="current")
        else:
            print_log(f"resume: replaying the dataloader for {n} batches", logger="current")
            for _ in range(n):
                next(self.dataloader_iterator)
        from ..datasets.seeded import seeding_problems

        for problem in seeding_problems(self.dataloader):
            print_log(f"resume is NOT exact: {problem}", logger="current", level=logging.WARNING)
        hooks = [h for h in self.runner.hooks if isinstance(h, ExactResumeHook)]
        if hooks and hooks[0].restore(self.runner):
            print_log("resume: random states restored from the checkpoint", logger="current")

    def run(self):
        """As :meth:`IterBasedTrainLoop.run`, with :meth:`_resume_position` in place of the replay."""
        self.runner.call_hook("before_train")
        self.runner.call_hook("before_train_epoch")
        if self._iter > 0:
            self._resume_position()
        while self._iter < self._max_iters and not self.stop_training:
            self.runner.model.train()
            data_batch = next(self.dataloader_iterator)
            self.run_iter(data_batch)
            self._decide_current_val_interval()
            if (self.runner.val_loop is not None and self._iter >= self.val_begin
                    and (self._iter % self.val_interval == 0 or self._iter == self._max_iters)):
                self.runner.val_loop.run()
        self.runner.call_hook("after_train_epoch")
        self.runner.call_hook("after_train")
        return self.runner.model
