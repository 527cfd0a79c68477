"""Atomic checkpoint writing, through mmengine's extension points (a file backend and a CheckpointHook subclass).

mmengine writes checkpoints and the ``last_checkpoint`` pointer in place, so a crash mid-write leaves a truncated
latest checkpoint. Here every local write goes to a temporary file in the same folder, is fsync'ed and
``os.replace``d over the target:

* :class:`AtomicLocalBackend`, registered with mmengine's file backends as ``'dense_adapters_atomic'``
  (``backend_args=dict(backend='dense_adapters_atomic')`` wherever mmengine takes backend arguments);
* :class:`AtomicCheckpointHook` (``default_hooks.checkpoint.type='dense_adapters.AtomicCheckpointHook'``, what
  the tools use): mmengine's CheckpointHook writing through that backend, the pointer included.

:func:`find_resume_checkpoint` picks the checkpoint a ``--resume`` continues from (a truncated file is skipped).
"""
from __future__ import annotations

import glob
import os.path as osp
import re
import zipfile
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import CheckpointHook, Hook

from ..fileio import atomic_write
from ..registry import HOOKS

ATOMIC_BACKEND = "dense_adapters_atomic"


@register_backend(ATOMIC_BACKEND)
class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend whose writes are atomic (:func:`atomic_write`); reads are unchanged."""

    def put(self, obj: bytes, filepath) -> None:
        atomic_write(str(filepath), obj)

    def put_text(self, obj: str, filepath, encoding: str = "utf-8") -> None:
        atomic_write(str(filepath), obj, encoding)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` (same arguments) with atomic local writes: checkpoints through
    :class:`AtomicLocalBackend` (unless ``backend_args``/``file_client_args`` choose another backend, or ``out_dir``
    is remote) and the ``last_checkpoint`` pointer through :func:`atomic_write`."""

    def before_train(self, runner) -> None:
        local = self.out_dir is None or "://" not in str(self.out_dir)
        if local and self.backend_args is None and self.file_client_args is None:
            self.backend_args = dict(backend=ATOMIC_BACKEND)
        super().before_train(runner)

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        # mmengine 0.10.7's method, with the pointer written atomically (it uses a plain open(..., 'w'))
        if self.max_keep_ckpts > 0:
            if not (len(self.keep_ckpt_ids) > 0 and self.keep_ckpt_ids[-1] == step):
                if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                    _step = self.keep_ckpt_ids.popleft()
                    if is_main_process():
                        old = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(_step))
                        if self.file_backend.isfile(old):
                            self.file_backend.remove(old)
                        elif self.file_backend.isdir(old):  # checkpoints saved by deepspeed are folders
                            self.file_backend.rmtree(old)
                self.keep_ckpt_ids.append(step)
                runner.message_hub.update_info("keep_ckpt_ids", list(self.keep_ckpt_ids))
        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info("last_ckpt", self.last_ckpt)
        runner.save_checkpoint(self.out_dir, ckpt_filename, self.file_client_args,
                               save_optimizer=self.save_optimizer, save_param_scheduler=self.save_param_scheduler,
                               meta=meta, by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
        if is_main_process():  # sharded (model-parallel) saves gather on the main process
            atomic_write(osp.join(runner.work_dir, "last_checkpoint"), str(self.last_ckpt))


@HOOKS.register_module()
class ContentHashHook(Hook):
    """Records a SHA-256 of each checkpoint's whole content in ``checkpoint['meta']['content_sha256']`` just before
    it is written (after every other hook changed it); the one reader checks it on load, so bytes damaged inside an
    intact zip are refused in one line instead of training into NaN (``dense_adapters.nn.convert.integrity``)."""

    priority = "LOWEST"

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        from ..nn.convert.integrity import record_digest

        record_digest(checkpoint)


def is_complete_checkpoint(path: str) -> bool:
    """True for a readable torch zip checkpoint (a truncated file lacks the zip's central directory)."""
    try:
        return osp.isfile(path) and zipfile.is_zipfile(path)
    except OSError:
        return False


def checkpoint_meta(path: str) -> dict:
    """The ``meta`` dict of a torch zip checkpoint, read lazily (memory-mapped, weights_only); {} if unreadable."""
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - only a hint; the real load reports problems
        return {}
    meta = ckpt.get("meta") if isinstance(ckpt, dict) else None
    return meta if isinstance(meta, dict) else {}


def find_resume_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint to resume from: ``last_checkpoint``'s target when complete, else the newest complete
    ``iter_*.pth`` / ``epoch_*.pth`` in ``work_dir``; None when there is none."""
    pointer = osp.join(work_dir, "last_checkpoint")
    if osp.isfile(pointer):
        with open(pointer) as f:
            target = f.read().strip()
        if target and is_complete_checkpoint(target):
            return target
    found = []
    for path in glob.glob(osp.join(work_dir, "*.pth")):
        m = re.fullmatch(r"(iter|epoch)_(\d+)\.pth", osp.basename(path))
        if m and is_complete_checkpoint(path):
            found.append((int(m.group(2)), path))
    return max(found)[1] if found else None
