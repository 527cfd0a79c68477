"""Atomic checkpoint writing, through mmengine's extension points (a file backend and a CheckpointHook subclass).

mmengine writes checkpoints and the ``last_checkpoint`` pointer in place, so a crash mid-write leaves a truncated
latest checkpoint. Here every local write goes to a temporary file in the same folder, is fsync'ed and
``os.replace``d over the target:

* :class:`AtomicLocalBackend`, registered with mmengine's file backends as ``'dense_adapters_atomic'``
  (``backend_args=dict(backend='dense_adapters_atomic')`` wherever mmengine takes backend arguments);
* :class:`AtomicCheckpointHook` (``default_hooks.checkpoint.type='dense_adapters.AtomicCheckpointHook'``, what
  the tools use): mmengine's CheckpointHook writing through that backend, the pointer included.
"""
from __future__ import annotations

import os
import os.path as osp
import tempfile
from typing import Union

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import CheckpointHook

from ..registry import HOOKS

ATOMIC_BACKEND = "dense_adapters_atomic"


def atomic_write(path: str, data: Union[bytes, str], encoding: str = "utf-8") -> None:
    """Write ``data`` to ``path`` so that ``path`` is either the old file or the complete new one, never partial.

    The data goes to a temporary file in the same folder (same file system), is fsync'ed, then ``os.replace``d
    over ``path``; the folder is fsync'ed so that the rename survives a power loss.
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{osp.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode(encoding) if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise
    try:
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:  # some file systems refuse fsync on folders
        pass


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
