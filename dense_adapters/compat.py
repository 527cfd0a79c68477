"""Fixes around known breakages of the pinned OpenMMLab stack, applied once by :func:`apply`.

1. mmcv-lite ships no compiled ``mmcv._ext``; mmseg imports ``mmcv.ops`` at module level in files our models never
   use. A stand-in module lets mmseg import and raises a clear error naming the op if one is ever called.
2. torch >= 2.6 loads with ``weights_only=True``; mmengine's own checkpoints hold a few plain Python/NumPy objects
   (message hub buffers, NumPy scalars). They are allow-listed so resume works while loading stays safe.
3. mmengine's ``pytorch`` and ``slurm`` launchers call ``torch.cuda.set_device`` unconditionally, which breaks CPU
   (gloo) runs.
4. mmengine writes checkpoints and the ``last_checkpoint`` pointer in place: a crash mid-write leaves a truncated
   latest checkpoint. Local writes go to a temporary file in the same folder, are fsync'ed and renamed over.
5. mmengine's loader of local checkpoints (``load_from``, resume, ``init_cfg=Pretrained``) is replaced by one that
   loads with ``weights_only=True`` (or safetensors) and refuses, in one line, a file that needs arbitrary code to
   unpickle unless :func:`set_trust_pickle` was called (``--trust-pickle``).

This module must run before anything imports mmseg: ``dense_adapters.registry`` imports it first.
"""
from __future__ import annotations

import builtins
import importlib.machinery
import importlib.util
import os
import os.path as osp
import sys
import tempfile
import types
from typing import Union

_APPLIED = False
_TRUST_PICKLE = False


from .errors import CompiledOpUnavailable, UntrustedCheckpoint  # noqa: F401  (re-exported)


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


def _patch_cpu_slurm_launcher() -> None:
    import torch
    import torch.distributed as torch_dist
    from mmengine.dist import utils as dist_utils

    original = dist_utils._init_dist_slurm

    def init_dist_slurm(backend: str, port=None, init_backend: str = "torch", **kwargs) -> None:
        if torch.cuda.is_available() or init_backend != "torch":
            return original(backend, port=port, init_backend=init_backend, **kwargs)
        # CPU nodes: the same environment as mmengine's, without device counting or set_device
        import subprocess

        os.environ.setdefault("MASTER_PORT", str(port or 29500))
        if "MASTER_ADDR" not in os.environ:
            nodes = os.environ["SLURM_NODELIST"]
            os.environ["MASTER_ADDR"] = subprocess.getoutput(f"scontrol show hostname {nodes} | head -n1")
        os.environ["WORLD_SIZE"] = os.environ["SLURM_NTASKS"]
        os.environ["RANK"] = os.environ["SLURM_PROCID"]
        os.environ["LOCAL_RANK"] = os.environ.get("SLURM_LOCALID", "0")
        torch_dist.init_process_group(backend="gloo" if backend == "nccl" else backend, **kwargs)

    dist_utils._init_dist_slurm = init_dist_slurm


# ---- atomic writes -----------------------------------------------------------------------------------------------

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


class _AtomicTextFile:
    """``open(path, 'w')`` stand-in: collects the text and writes it atomically on close."""

    def __init__(self, path: str, encoding: str = "utf-8") -> None:
        self.path, self.encoding, self.parts = path, encoding, []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def close(self) -> None:
        atomic_write(self.path, "".join(self.parts), self.encoding)

    def __enter__(self) -> "_AtomicTextFile":
        return self

    def __exit__(self, exc_type, *_) -> None:
        if exc_type is None:
            self.close()


def _patch_atomic_writes() -> None:
    from mmengine.fileio.backends.local_backend import LocalBackend
    from mmengine.hooks import checkpoint_hook

    def put(self, obj: bytes, filepath) -> None:
        atomic_write(str(filepath), obj)

    def put_text(self, obj: str, filepath, encoding: str = "utf-8") -> None:
        atomic_write(str(filepath), obj, encoding)

    LocalBackend.put = put  # checkpoints: mmengine's save_checkpoint ends in LocalBackend.put
    LocalBackend.put_text = put_text

    def hook_open(file, mode: str = "r", *args, **kwargs):
        # CheckpointHook writes the 'last_checkpoint' pointer with a plain open(...,'w'): make that one atomic
        if "w" in mode and "b" not in mode and osp.basename(str(file)) == "last_checkpoint":
            return _AtomicTextFile(str(file), kwargs.get("encoding") or "utf-8")
        return builtins.open(file, mode, *args, **kwargs)

    checkpoint_hook.open = hook_open  # module global shadows the builtin inside checkpoint_hook only


# ---- safe checkpoint loading -------------------------------------------------------------------------------------

def set_trust_pickle(trust: bool) -> None:
    """Allow (True) or refuse (False, default) checkpoints that need arbitrary code to unpickle."""
    global _TRUST_PICKLE
    _TRUST_PICKLE = bool(trust)


def trust_pickle() -> bool:
    return _TRUST_PICKLE


def safe_torch_load(path: str, map_location=None, trust: bool = None):
    """``torch.load`` with ``weights_only=True`` (safetensors for ``*.safetensors``); a file that needs arbitrary
    code raises :class:`UntrustedCheckpoint` with one line naming the file and the fix."""
    import pickle
    import re

    import torch

    trust = _TRUST_PICKLE if trust is None else trust
    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        device = map_location if isinstance(map_location, str) else "cpu"
        return {"state_dict": load_file(path, device=device)}
    try:
        return torch.load(path, map_location=map_location, weights_only=not trust)
    except pickle.UnpicklingError as e:
        if trust:
            raise
        found = re.search(r"GLOBAL (\S+) was not an allowed global", str(e))
        what = f" (it holds {found.group(1)})" if found else ""
        raise UntrustedCheckpoint(
            f"{path} needs arbitrary code to unpickle{what}, so it was refused: pass --trust-pickle only if you "
            "trust its source, or re-save its state_dict (tools/convert_checkpoint.py)") from None


def _patch_checkpoint_loading() -> None:
    from mmengine.runner.checkpoint import CheckpointLoader

    def load_from_local(filename: str, map_location=None):
        filename = osp.expanduser(filename)
        if not osp.isfile(filename):
            raise FileNotFoundError(f"checkpoint not found: {filename}")
        return safe_torch_load(filename, map_location)

    CheckpointLoader.register_scheme(prefixes="", force=True)(load_from_local)


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
    _patch_cpu_slurm_launcher()
    _patch_atomic_writes()
    _patch_checkpoint_loading()
