"""The retrofit's native checkpoint: the student's weights and the skips they were trained for.

Format (``format_version`` 1)::

    {'state_dict': <student state dict>,
     'dense_adapters': {'format_version': 1, 'preset': str | None, 'arch_kwargs': dict,
                        'skip_layers': [int], 'skip_mode': str}}

(a Uformer student adds ``'family': 'uformer'``; its ``skip_layers`` are the decoder stages, all of them.)
Phi was distilled for exactly these skips: loading the weights into a model with other ``skip_layers`` or another
``skip_mode`` is refused with one line (:func:`check_meta`), never half-loaded.
"""
from __future__ import annotations

import io
from typing import Optional

import torch
from torch import nn

from ..fileio import atomic_write
from ..errors import CheckpointError, CheckpointMismatch
from ..nn import RegViT
from ..nn.convert import adapt_to_model, load_file
from .spec import ModelSpec

FORMAT_VERSION = 1
META_KEY = "dense_adapters"


def skip_signature(model: nn.Module) -> tuple[list[int], Optional[str]]:
    """(skip_layers, skip_mode) of a RegViT or Uformer; skip_mode None when nothing is skipped."""
    if isinstance(model, RegViT):
        layers = list(model.skip_layers)
        modes = {model.blocks[i].skip for i in layers}
        return layers, (modes.pop() if len(modes) == 1 else (None if not modes else "mixed"))
    mode = getattr(model, "skip_mode", None)
    return (list(range(len(model.decoders))) if mode else []), mode


def make_meta(model: nn.Module, spec: ModelSpec) -> dict:
    layers, mode = skip_signature(model)
    meta = {"format_version": FORMAT_VERSION, **spec.meta(), "skip_layers": layers, "skip_mode": mode}
    if spec.family != "regvit":
        meta["family"] = spec.family
    return meta


def save_retrofit(path: str, model: nn.Module, spec: ModelSpec) -> dict:
    """Write the student atomically (temp file, fsync, rename); returns the meta block written."""
    meta = make_meta(model, spec)
    buf = io.BytesIO()
    torch.save({"state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, META_KEY: meta}, buf)
    atomic_write(path, buf.getvalue())
    return meta


def read_retrofit(path: str, trust_pickle: bool = False) -> tuple[dict, dict]:
    """(state_dict, meta) of a retrofit checkpoint; one line if the file is not one."""
    obj = load_file(path, trust_pickle=trust_pickle)
    meta = obj.get(META_KEY) if isinstance(obj, dict) else None
    if not isinstance(meta, dict) or "state_dict" not in obj:
        raise CheckpointError(f"{path} is not a dense-adapters retrofit checkpoint (no '{META_KEY}' block): "
                              "load plain checkpoints with load_pretrained")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} has retrofit format_version {meta.get('format_version')!r}, this version "
                              f"reads {FORMAT_VERSION}: upgrade dense-adapters or re-run the retrofit")
    return obj["state_dict"], meta


def check_meta(model: nn.Module, meta: dict, path: str = "checkpoint", preset: Optional[str] = "any") -> None:
    """Refuse (one line) a model whose skips differ from the checkpoint's, or a named ``preset`` that is not the
    checkpoint's (``preset='any'`` skips that comparison)."""
    layers, mode = skip_signature(model)
    want_layers, want_mode = list(meta.get("skip_layers") or []), meta.get("skip_mode")
    if preset != "any" and preset != meta.get("preset"):
        raise CheckpointMismatch(f"{path} was retrofitted on preset {meta.get('preset')!r}, not {preset!r}: build "
                                 f"the model from preset {meta.get('preset')!r} (or use build_from_retrofit)")
    if layers != want_layers or (want_layers and mode != want_mode):
        raise CheckpointMismatch(
            f"{path} holds a SkipAt student with skip_layers={want_layers}, skip_mode={want_mode!r}, but the model "
            f"has skip_layers={layers}, skip_mode={mode!r}: build it with skip_layers={want_layers} and "
            f"skip_mode={want_mode!r} (or use build_from_retrofit)")


def load_retrofit(model: nn.Module, path: str, preset: Optional[str] = "any", trust_pickle: bool = False) -> dict:
    """Load a retrofit checkpoint into ``model`` after :func:`check_meta`; every tensor must fit. Returns the meta."""
    sd, meta = read_retrofit(path, trust_pickle)
    check_meta(model, meta, path, preset)
    if isinstance(model, RegViT):
        try:
            sd, report = adapt_to_model(sd, model, "retrofit")  # resizes pos_embed for another img_size
        except ValueError as e:
            raise CheckpointMismatch(f"{path}: {e}") from None
        if report.missing or report.unexpected:
            raise CheckpointMismatch(f"{path} does not fit the model: missing {report.missing[:3]}, unexpected "
                                     f"{report.unexpected[:3]}: build it from preset {meta.get('preset')!r} with "
                                     f"arch_kwargs {meta.get('arch_kwargs')}")
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        raise CheckpointMismatch(f"{path} does not fit the model: {lines[1] if len(lines) > 1 else lines[0]}") from None
    return meta


def build_from_retrofit(path: str, preset: Optional[str] = "any", trust_pickle: bool = False) -> nn.Module:
    """The student model a retrofit checkpoint describes, with its weights, in eval mode."""
    _, meta = read_retrofit(path, trust_pickle)
    spec = ModelSpec(meta.get("family", "regvit"), meta.get("preset"), dict(meta.get("arch_kwargs") or {}))
    if preset != "any" and preset != spec.preset:
        raise CheckpointMismatch(f"{path} was retrofitted on preset {spec.preset!r}, not {preset!r}")
    model = spec.build(meta["skip_layers"], meta["skip_mode"]) if spec.family == "regvit" else \
        spec.build((), meta["skip_mode"])
    load_retrofit(model, path, trust_pickle=trust_pickle)
    return model.eval()
