"""Safe checkpoint loading for the mm layer: one reader, a Runner that uses it, weights_only-safe message hubs.

Every checkpoint the tools read goes through :func:`load_checkpoint_file`, a thin layer over the core reader
``dense_adapters.nn.convert.load_file`` (``weights_only=True`` or safetensors; ``trust_pickle`` to allow pickled
code). The pieces are selected explicitly, nothing is patched:

* :class:`SafeLoadRunner` (``runner_type='dense_adapters.SafeLoadRunner'``; ``dense_adapters.cli.runner.
  build_runner`` picks it for plain-Runner configs): mmengine's Runner whose ``load_from`` / resume reads through
  :func:`load_checkpoint_file`;
* :class:`WeightsOnlyStateHook`: mmengine's message hub holds ``HistoryBuffer`` objects, which pickle a
  ``getattr`` of their statistics methods that ``weights_only`` refuses. The hook saves them as plain tensors and
  rebuilds them on load, so checkpoints of our runs load with ``weights_only=True`` anywhere, mmengine's own
  loader included;
* :func:`mmengine_checkpoint_globals`: while :func:`load_checkpoint_file` reads, the NumPy and ``HistoryBuffer``
  objects that checkpoints written before the hook hold are allow-listed (still no ``getattr``, so a plain
  mmengine checkpoint with its statistics methods needs ``trust_pickle``).
"""
from __future__ import annotations

import codecs
import contextlib
import contextvars
import io
import os
import os.path as osp
from typing import Callable, Iterator, Optional, Union

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from mmengine.model.weight_init import PretrainedInit
from mmengine.runner.checkpoint import _load_checkpoint_to_model, load_state_dict
from torch import nn

from ..errors import CheckpointMismatch, UntrustedCheckpoint, UserError
from ..registry import HOOKS, RUNNERS, WEIGHT_INITIALIZERS

_BUFFER_TAG = "__dense_adapters_history_buffer__"


def _numpy_globals() -> list:
    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar
    dtypes = [type(np.dtype(t)) for t in ("float64", "float32", "float16", "int64", "int32", "uint8", "bool")]
    return [np.ndarray, np.dtype, _reconstruct, scalar, codecs.encode, *dtypes]


@contextlib.contextmanager
def mmengine_checkpoint_globals() -> Iterator[None]:
    """Allow, for ``weights_only`` loads inside the block only, the plain NumPy objects and ``HistoryBuffer``s
    that mmengine checkpoints written without :class:`WeightsOnlyStateHook` hold."""
    with torch.serialization.safe_globals([HistoryBuffer, *_numpy_globals()]):
        yield


def _untrusted(source: str) -> UntrustedCheckpoint:
    from ..nn.convert import fetch_checkpoint

    try:
        local = fetch_checkpoint(source)
        with mmengine_checkpoint_globals():
            found = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(local))
    except Exception:  # noqa: BLE001 - only for the message
        found = []
    what = f" (it holds {', '.join(found)})" if found else ""
    return UntrustedCheckpoint(
        f"{source} needs arbitrary code to unpickle{what}, so it was refused: pass --trust-pickle only if you trust "
        "its source, or re-save its state_dict (tools/convert_checkpoint.py)")


def load_checkpoint_file(path: str, map_location: Union[str, Callable, None] = "cpu",
                         trust_pickle: bool = False) -> dict:
    """Read a checkpoint through the one reader (``dense_adapters.nn.convert.load_file``): local files, Hugging Face
    folders, http(s)/file URLs and mmengine's prefixes (``torchvision://``, ``open-mmlab://``, ``mmcls://``,
    ``s3://``..., resolved by :mod:`.sources`), ``weights_only=True`` or safetensors, content checksum checked.

    Raises :class:`~dense_adapters.errors.UntrustedCheckpoint` (one line naming what it holds) for a file that
    needs arbitrary code, unless ``trust_pickle``; :class:`~dense_adapters.errors.CheckpointError` for the rest.
    """
    from ..nn.convert import load_file

    path = str(path)
    try:
        with mmengine_checkpoint_globals():
            return load_file(path, map_location=map_location, trust_pickle=trust_pickle)
    except UntrustedCheckpoint:
        raise _untrusted(path) from None


# ---- init_cfg=dict(type='Pretrained') of any module --------------------------------------------------------------

_TRUST = contextvars.ContextVar("dense_adapters_trust_pickle", default=False)


@WEIGHT_INITIALIZERS.register_module(name="Pretrained")
class SafePretrainedInit(PretrainedInit):
    """mmengine's ``PretrainedInit`` reading through :func:`load_checkpoint_file` (``weights_only``, every source
    prefix, one-line errors) and refusing a load that fits nothing: a checkpoint whose tensors match none of the
    module's, or have other shapes, would leave the module randomly initialised with only a warning.

    Registered as ``Pretrained`` in the ``dense_adapters`` scope: :class:`SafeLoadRunner` gives every
    ``init_cfg=dict(type='Pretrained', ...)`` of the model ``_scope_='dense_adapters'``, so mmengine's own
    ``init_weights`` (order of initialisation kept) builds this class. ``trust_pickle`` allows pickled code.
    """

    def __init__(self, checkpoint, prefix=None, map_location="cpu", trust_pickle: bool = False) -> None:
        super().__init__(checkpoint, prefix=prefix, map_location=map_location)
        self.trust_pickle = trust_pickle

    def __call__(self, module) -> None:
        from mmengine.logging import print_log
        from mmengine.model.weight_init import update_init_info

        trust = self.trust_pickle or _TRUST.get()
        ckpt = load_checkpoint_file(self.checkpoint, map_location=self.map_location, trust_pickle=trust)
        sd = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else ckpt
        if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
            raise CheckpointMismatch(f"{self.checkpoint} holds no state dict of tensors (init_cfg Pretrained of "
                                     f"{type(module).__name__})")
        sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}
        if self.prefix:
            p = self.prefix if self.prefix.endswith(".") else self.prefix + "."
            sd = {k[len(p):]: v for k, v in sd.items() if k.startswith(p)}
            if not sd:
                raise CheckpointMismatch(f"{self.checkpoint} has no tensor under the prefix {self.prefix!r} (init_cfg "
                                         f"Pretrained of {type(module).__name__}): check the prefix")
        own = module.state_dict()
        fits = [k for k in sd if k in own and tuple(sd[k].shape) == tuple(own[k].shape)]
        wrong = [k for k in sd if k in own and k not in fits]
        if wrong or not fits:
            what = (f"{len(wrong)} tensors have other shapes (e.g. {wrong[0]}: checkpoint "
                    f"{tuple(sd[wrong[0]].shape)} vs model {tuple(own[wrong[0]].shape)})" if wrong else
                    f"none of its tensors match the module's names (e.g. {', '.join(list(sd)[:2])} vs "
                    f"{', '.join(list(own)[:2])})")
            raise CheckpointMismatch(f"{self.checkpoint} does not fit {type(module).__name__} (init_cfg Pretrained): "
                                     f"{what}: use the checkpoint of this architecture, or set prefix=")
        print_log(f"load model from: {self.checkpoint} ({len(fits)} of {len(own)} tensors; "
                  f"{len(own) - len(fits)} keep their initialisation, {len(sd) - len(fits)} unused)",
                  logger="current")
        load_state_dict(module, sd, strict=False, logger="current")
        if hasattr(module, "_params_init_info"):
            update_init_info(module, init_info=self._get_init_info())


def _pretrained_cfgs(module) -> list:
    cfg = getattr(module, "init_cfg", None)
    cfgs = cfg if isinstance(cfg, (list, tuple)) else [cfg]
    return [c for c in cfgs if isinstance(c, dict) and (c.get("type") == "Pretrained" or c.get("type") is PretrainedInit)]


def _reads_its_own_init_cfg(module: nn.Module) -> bool:
    """True for a module whose ``init_weights`` reads a Pretrained checkpoint itself (mmseg's VisionTransformer,
    MixVisionTransformer, ... call mmengine's ``CheckpointLoader`` instead of the initializer)."""
    from mmengine.model import BaseModule

    fn = getattr(type(module), "init_weights", None)
    return isinstance(module, BaseModule) and fn is not None and fn is not BaseModule.init_weights


def weights_only_file(source: str, trust_pickle: bool = False) -> str:
    """A local torch file that ``torch.load(weights_only=True)`` reads and that holds the weights the safe reader
    reads from ``source``: the downloaded or local file itself when it is such a torch zip, else a plain copy
    (``{'state_dict': tensors}``) in the reader's cache, keyed by the file's path, size and time (safetensors, Hugging
    Face folders, post-processed prefixes such as ``mmcls://``, a pickle allowed by ``trust_pickle``). For modules
    that read their checkpoint themselves through mmengine's loader. Refusals are one line, as
    :func:`load_checkpoint_file`'s."""
    import zipfile

    from ..fileio import atomic_write
    from ..nn.convert import read_checkpoint, resolve_source
    from ..nn.convert.reader import cached_path

    trusted = False
    try:
        with mmengine_checkpoint_globals():
            ckpt = read_checkpoint(source, trust_pickle=False)
    except UntrustedCheckpoint:
        if not trust_pickle:
            raise _untrusted(source) from None
        ckpt, trusted = read_checkpoint(source, trust_pickle=True), True
    _, post = resolve_source(source)
    if not trusted and not post and osp.isfile(ckpt.path) and zipfile.is_zipfile(ckpt.path):
        return ckpt.path
    st = os.stat(ckpt.path)
    steps = "+".join(getattr(f, "__qualname__", "") for f in post)
    key = cached_path(f"{osp.abspath(ckpt.path)}#{st.st_size}:{st.st_mtime_ns}#{steps}#weights-only")
    local = osp.join(osp.dirname(key), "weights_only.pth")  # a torch file by its name too (loaders go by suffix)
    if not osp.isfile(local):
        obj = ckpt.obj
        inner = next((obj[k] for k in ("state_dict", "model") if isinstance(obj, dict) and
                      isinstance(obj.get(k), dict)), obj)  # where mmengine's loaders look
        sd = {k: v for k, v in inner.items() if isinstance(v, torch.Tensor)} if isinstance(inner, dict) else {}
        if not sd:
            raise CheckpointMismatch(f"{source} holds no state dict of tensors (looked at the top level and under "
                                     "'state_dict' and 'model'): give the checkpoint of the module's weights")
        buf = io.BytesIO()
        torch.save({"state_dict": sd}, buf)
        os.makedirs(osp.dirname(local), exist_ok=True)
        atomic_write(local, buf.getvalue())
    return local


def prepare_pretrained(model: nn.Module, trust_pickle: bool = False) -> int:
    """Route every ``init_cfg=dict(type='Pretrained')`` of ``model``'s modules through the safe reader (in place):
    ``_scope_='dense_adapters'`` selects :class:`SafePretrainedInit` (which reads any source: files, folders, URLs,
    prefixes); a module that reads its ``init_cfg`` checkpoint itself (mmseg's VisionTransformer, ...) gets the
    checkpoint read now, refused in one line if it must be, and a local file that mmengine's weights-only loader
    reads (:func:`weights_only_file`). Our own modules (``dense_adapters.*``) read through the reader already.
    Returns how many."""
    n = 0
    for m in model.modules():
        if type(m).__module__.startswith("dense_adapters."):
            continue
        for c in _pretrained_cfgs(m):
            c["type"], c["_scope_"] = "Pretrained", "dense_adapters"
            if trust_pickle:
                c["trust_pickle"] = True
            if _reads_its_own_init_cfg(m) and c.get("checkpoint"):
                c["checkpoint"] = weights_only_file(str(c["checkpoint"]), trust_pickle)
            n += 1
    return n


def load_weights(model: nn.Module, path: str, strict: bool = True, trust_pickle: bool = False,
                 check: bool = True) -> dict:
    """Load the weights of a training checkpoint (or a plain state dict) into ``model``.

    With ``check`` (default) the checkpoint is first fitted against the model
    (:func:`dense_adapters.engine.checkpoint_fit.check_fits`, strict or not), so a mismatch is one line.
    Returns the checkpoint as read.
    """
    from .checkpoint_fit import check_fits

    ckpt = load_checkpoint_file(path, map_location="cpu", trust_pickle=trust_pickle)
    sd = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else ckpt
    if not isinstance(sd, dict) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointMismatch(f"{path} holds no state dict of tensors (looked at the top level and under "
                                 "'state_dict'): give a checkpoint written by tools/train.py or a state dict")
    sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}
    if check:
        check_fits(sd, model.state_dict(), path, "strict" if strict else "finetune")
    load_state_dict(model, sd, strict=strict)
    return ckpt


@RUNNERS.register_module()
class SafeLoadRunner(Runner):
    """mmengine's ``Runner`` whose checkpoint loads (``load_from``, resume) go through :func:`load_checkpoint_file`.

    ``trust_pickle`` (attribute, default False) allows checkpoints that need arbitrary code to unpickle.
    """

    trust_pickle: bool = False

    @staticmethod
    def build_dataloader(dataloader, seed: Optional[int] = None, diff_rank_seed: bool = False):
        """mmengine's, plus: a ``SeededDataset`` without a seed of its own gets the run's (before workers start)."""
        loader = Runner.build_dataloader(dataloader, seed=seed, diff_rank_seed=diff_rank_seed)
        ds = getattr(loader, "dataset", None)
        if type(ds).__name__ == "SeededDataset" and ds.seed is None:
            ds.seed = seed
        return loader

    def _init_model_weights(self) -> None:
        """mmengine's weight initialisation with every ``init_cfg=dict(type='Pretrained')`` read by the safe
        reader (:func:`prepare_pretrained`, :class:`SafePretrainedInit`)."""
        model = self.model.module if is_model_wrapper(self.model) else self.model
        prepare_pretrained(model, self.trust_pickle)
        token = _TRUST.set(self.trust_pickle)
        try:
            super()._init_model_weights()
        finally:
            _TRUST.reset(token)

    def init_model_weights(self) -> None:
        """The configured weights (``init_cfg``) without training, e.g. for ``tools/test.py`` without a checkpoint."""
        self._init_model_weights()

    def resume(self, filename: str, resume_optimizer: bool = True, resume_param_scheduler: bool = True,
               map_location: Union[str, Callable] = "default") -> None:
        """mmengine's resume, then the config's optimizer settings where they differ from the checkpoint's (a
        lowered lr applies, replayed through the schedule, and is logged: :mod:`.resume_overrides`)."""
        from .resume_overrides import apply_config_hyperparameters, snapshot

        fresh = snapshot(self.optim_wrapper) if resume_optimizer else None
        self._resume_needs = ("meta", "state_dict") + (("optimizer",) if resume_optimizer else ())
        try:
            super().resume(filename, resume_optimizer=resume_optimizer,
                           resume_param_scheduler=resume_param_scheduler, map_location=map_location)
        except ValueError as e:
            if "parameter group" not in str(e):
                raise
            raise UserError(f"cannot resume from {filename}: its optimizer has other parameter groups than this "
                            f"config's ({' '.join(str(e).split())}): resume with the config (paramwise_cfg, "
                            "frozen parts) the run started with") from None
        finally:
            self._resume_needs = ()
        if resume_optimizer:
            apply_config_hyperparameters(self, fresh)

    def load_checkpoint(self, filename: str, map_location: Union[str, Callable] = "cpu", strict: bool = False,
                        revise_keys: list = [(r"^module.", "")]):  # noqa: B006 - mmengine's signature
        checkpoint = load_checkpoint_file(filename, map_location=map_location, trust_pickle=self.trust_pickle)
        lacks = [k for k in getattr(self, "_resume_needs", ()) if not isinstance(checkpoint, dict) or k not in checkpoint]
        if lacks:  # mmengine's resume would stop with a KeyError
            raise UserError(f"cannot resume from {filename}: it is not a training checkpoint (no {', '.join(lacks)}; "
                            "e.g. a plain state dict): resume from a checkpoint written by tools/train.py, or start "
                            f"from its weights with --cfg-options load_from={filename}")
        self.call_hook("after_load_checkpoint", checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(self.model) else self.model
        checkpoint = _load_checkpoint_to_model(model, checkpoint, strict, revise_keys=revise_keys)
        self._has_loaded = True
        self.logger.info(f"Load checkpoint from {filename}")
        return checkpoint


def _plain(value):
    """NumPy scalars and arrays inside ``value`` (dicts, lists, tuples) as Python numbers and lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return type(value)((k, _plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return type(value)(_plain(v) for v in value)
    return value


def buffer_to_state(buf: HistoryBuffer) -> dict:
    """A ``HistoryBuffer`` as plain tensors (loadable with ``weights_only=True``)."""
    log, count = buf.data
    return {_BUFFER_TAG: True, "log": torch.from_numpy(np.array(log)), "count": torch.from_numpy(np.array(count)),
            "max_length": int(buf.max_length)}


def state_to_buffer(state: dict) -> HistoryBuffer:
    """Inverse of :func:`buffer_to_state`."""
    return HistoryBuffer(state["log"].numpy(), state["count"].numpy(), state["max_length"])


@HOOKS.register_module()
class WeightsOnlyStateHook(Hook):
    """Keeps checkpoints loadable with ``weights_only=True``: the message hub's ``HistoryBuffer``s are saved as
    tensors (:func:`buffer_to_state`) and NumPy values in the message hub and ``meta`` as Python values; on load
    the buffers are rebuilt before mmengine restores the message hub. The tools add it to every run."""

    priority = "VERY_LOW"  # after the hooks that add to the checkpoint

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        hub: Optional[dict] = checkpoint.get("message_hub")
        if isinstance(hub, dict):
            if isinstance(hub.get("log_scalars"), dict):
                hub["log_scalars"] = {k: buffer_to_state(v) if isinstance(v, HistoryBuffer) else v
                                      for k, v in hub["log_scalars"].items()}
            if isinstance(hub.get("runtime_info"), dict):
                hub["runtime_info"] = _plain(hub["runtime_info"])
        if isinstance(checkpoint.get("meta"), dict):
            checkpoint["meta"] = _plain(checkpoint["meta"])

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        hub = checkpoint.get("message_hub")
        if isinstance(hub, dict) and isinstance(hub.get("log_scalars"), dict):
            hub["log_scalars"] = {k: state_to_buffer(v) if isinstance(v, dict) and v.get(_BUFFER_TAG) else v
                                  for k, v in hub["log_scalars"].items()}
