"""The retrofit's checkpoint: the student's weights and the skips they were trained for, in the toolkit's native
format (one definition: :func:`dense_adapters.nn.convert.make_native_checkpoint`)::

    {'state_dict': <student state dict>,
     'dense_adapters': {'format_version': 1, 'preset': str | None, 'arch_kwargs': dict,
                        'skip_layers': [int], 'skip_mode': str}}

``arch_kwargs`` are the retrofit's overrides on ``preset``: the run's own settings (dropout, drop-path and RoPE
augmentation off) are not recorded, so a rebuilt student trains as its preset does. A RegViT student loads through
the core's loader (``load_pretrained``, ``init_cfg``, ``build_from_checkpoint``), which refuses a model with other
``skip_layers`` or ``skip_mode`` in one line (``check_native_layout``) and loads strictly. A Uformer student adds
``'family': 'uformer'`` (the core's loader refuses it); its ``skip_layers`` are the decoder stages, all of them, and
its ``skip_mode`` is checked here.
"""
from __future__ import annotations

import io
from typing import Optional

import torch
from torch import nn

from ..errors import CheckpointError, CheckpointMismatch
from ..fileio import atomic_write
from ..nn import RegViT
from ..nn.convert import (NATIVE_FORMAT_VERSION, NATIVE_META_KEY, Checkpoint, build_from_checkpoint,
                          load_pretrained, make_native_checkpoint, native_meta, read_checkpoint)
from .spec import ModelSpec


def save_retrofit(path: str, model: nn.Module, spec: ModelSpec) -> dict:
    """Write the student atomically (temp file, fsync, rename); returns the meta block written."""
    sd = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if spec.family == "regvit":
        obj = make_native_checkpoint(model, preset=spec.preset, state_dict=sd, arch_kwargs=spec.arch_kwargs)
    else:
        mode = getattr(model, "skip_mode", None)
        obj = {"state_dict": sd, NATIVE_META_KEY: {
            "format_version": NATIVE_FORMAT_VERSION, **spec.meta(), "family": spec.family, "skip_mode": mode,
            "skip_layers": list(range(len(model.decoders))) if mode else []}}
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write(path, buf.getvalue())
    return obj[NATIVE_META_KEY]


def _read(path: str, trust_pickle: bool) -> tuple[Checkpoint, dict]:
    ckpt = read_checkpoint(path, trust_pickle=trust_pickle)
    meta = native_meta(ckpt.obj)  # refuses a newer format_version in one line
    if meta is None or not isinstance(ckpt.obj.get("state_dict"), dict):
        raise CheckpointError(f"{path} is not a dense-adapters retrofit checkpoint (no '{NATIVE_META_KEY}' block): "
                              "load plain checkpoints with load_pretrained")
    return ckpt, meta


def read_retrofit(path: str, trust_pickle: bool = False) -> tuple[dict, dict]:
    """(state_dict, meta) of a retrofit checkpoint; one line if the file is not one."""
    ckpt, meta = _read(path, trust_pickle)
    return ckpt.obj["state_dict"], meta


def _check_preset(meta: dict, path: str, preset: Optional[str]) -> None:
    if preset != "any" and preset != meta.get("preset"):
        raise CheckpointMismatch(f"{path} was retrofitted on preset {meta.get('preset')!r}, not {preset!r}: build "
                                 f"the model from preset {meta.get('preset')!r} (or use build_from_retrofit)")


def _load_uformer(model: nn.Module, sd: dict, meta: dict, path: str) -> None:
    family, mode = meta.get("family", "regvit"), getattr(model, "skip_mode", None)
    if family != "uformer":
        raise CheckpointMismatch(f"{path} holds a {family} student, not a Uformer: use build_from_retrofit")
    if mode != meta.get("skip_mode"):
        raise CheckpointMismatch(f"{path} holds a SkipAt Uformer with skip_mode={meta.get('skip_mode')!r}, but the "
                                 f"model has skip_mode={mode!r}: build it with skip_mode={meta.get('skip_mode')!r} "
                                 "(or use build_from_retrofit)")
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        raise CheckpointMismatch(f"{path} does not fit the model: {lines[1] if len(lines) > 1 else lines[0]}") from None


def load_retrofit(model: nn.Module, path: str, preset: Optional[str] = "any", trust_pickle: bool = False) -> dict:
    """Load a retrofit checkpoint into ``model`` (a RegViT through the core's ``load_pretrained``: same skips, every
    tensor must fit); ``preset`` other than ``'any'`` must be the checkpoint's. Returns the meta."""
    ckpt, meta = _read(path, trust_pickle)
    _check_preset(meta, path, preset)
    if isinstance(model, RegViT):
        load_pretrained(model, ckpt, source="native")
    else:
        _load_uformer(model, ckpt.obj["state_dict"], meta, path)
    return meta


def build_from_retrofit(path: str, preset: Optional[str] = "any", trust_pickle: bool = False) -> nn.Module:
    """The student model a retrofit checkpoint describes, with its weights, in eval mode."""
    ckpt, meta = _read(path, trust_pickle)
    _check_preset(meta, path, preset)
    if meta.get("family", "regvit") == "regvit":
        model, _ = build_from_checkpoint(ckpt, source="native")
        return model.eval()
    model = ModelSpec(meta["family"], meta.get("preset"), dict(meta.get("arch_kwargs") or {})).build(
        (), meta.get("skip_mode"))
    _load_uformer(model, ckpt.obj["state_dict"], meta, path)
    return model.eval()
