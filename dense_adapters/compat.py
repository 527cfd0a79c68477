"""Fixes around known breakages of the pinned OpenMMLab stack, applied once by :func:`apply`.

1. mmcv-lite ships no compiled ``mmcv._ext``; mmseg imports ``mmcv.ops`` at module level in files our models never
   use. A stand-in module lets mmseg import and raises a clear error naming the op if one is ever called.
2. torch >= 2.6 loads with ``weights_only=True``; mmengine's own checkpoints hold a few plain Python/NumPy objects
   (message hub buffers, NumPy scalars). They are allow-listed so resume works while loading stays safe.
3. mmengine's ``pytorch`` launcher calls ``torch.cuda.set_device`` unconditionally, which breaks CPU (gloo) runs.

This module must run before anything imports mmseg: ``dense_adapters.registry`` imports it first.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
import types

_APPLIED = False


class CompiledOpUnavailable(RuntimeError):
    """An mmcv op that needs the compiled extension was called under mmcv-lite."""


class _MissingExt(types.ModuleType):
    """Stand-in for ``mmcv._ext``: every attribute is a function that raises a one-line explanation."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)

        def unavailable(*args, **kwargs):
            raise CompiledOpUnavailable(
                f"mmcv op '{name}' needs compiled mmcv, but only mmcv-lite is installed: install full mmcv "
                "(pip install 'mmcv>=2.0.0rc4,<2.2.0' builds it) or pick a model that does not use this op")

        unavailable.__name__ = name
        return unavailable


def has_compiled_mmcv() -> bool:
    """True when the real ``mmcv._ext`` is importable (full mmcv), False under mmcv-lite."""
    mod = sys.modules.get("mmcv._ext")
    if isinstance(mod, _MissingExt):
        return False
    try:
        return importlib.util.find_spec("mmcv._ext") is not None
    except (ImportError, ValueError):
        return False


def _install_mmcv_ext_standin() -> None:
    if "mmcv._ext" in sys.modules or importlib.util.find_spec("mmcv") is None:
        return
    if importlib.util.find_spec("mmcv._ext") is not None:
        return
    ext = _MissingExt("mmcv._ext")
    ext.__spec__ = importlib.machinery.ModuleSpec("mmcv._ext", loader=None)  # mmengine inspects the spec
    sys.modules["mmcv._ext"] = ext


def _allow_mmengine_checkpoint_objects() -> None:
    import codecs

    import numpy as np
    import torch
    from mmengine.logging import HistoryBuffer

    if not hasattr(torch.serialization, "add_safe_globals"):
        return

    def getstate(self) -> dict:
        # mmengine pickles its statistics methods (getattr(HistoryBuffer, 'min')), which weights_only refuses
        # and which would make resuming need arbitrary code; they are class-level and re-created on load.
        state = dict(self.__dict__)
        state.pop("statistics_methods", None)
        return state

    HistoryBuffer.__getstate__ = getstate
    safe = [HistoryBuffer, np.ndarray, np.dtype, codecs.encode]
    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar
    safe += [_reconstruct, scalar]
    safe += [type(np.dtype(t)) for t in ("float64", "float32", "float16", "int64", "int32", "uint8", "bool")]
    torch.serialization.add_safe_globals(safe)


def _patch_cpu_launcher() -> None:
    import torch
    import torch.distributed as torch_dist
    from mmengine.dist import utils as dist_utils

    original = dist_utils._init_dist_pytorch

    def init_dist_pytorch(backend: str, init_backend: str = "torch", **kwargs) -> None:
        if torch.cuda.is_available() or init_backend != "torch":
            return original(backend, init_backend=init_backend, **kwargs)
        # CPU: no set_device; nccl needs GPUs, so gloo it is
        torch_dist.init_process_group(backend="gloo" if backend == "nccl" else backend, **kwargs)

    dist_utils._init_dist_pytorch = init_dist_pytorch


def apply() -> None:
    """Apply every fix once; safe to call many times."""
    global _APPLIED
    if _APPLIED:
        return
    _APPLIED = True
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # timm's pretrained=True must not hang on the hub offline
    _install_mmcv_ext_standin()
    _allow_mmengine_checkpoint_objects()
    _patch_cpu_launcher()
