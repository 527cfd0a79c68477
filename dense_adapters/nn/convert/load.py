"""Loading a converted checkpoint into a RegViT, with a report that cannot hide a partial load.

After conversion every checkpoint tensor is loaded, dropped for a reason named in ``common.DROPPABLE`` (or as the
attention of a SkipAt block), or *unused*; every model tensor is loaded, *new* (one the source format cannot have:
SkipAt's Phi, a mask token) or *missing*. Anything missing or unused makes :func:`load_pretrained` refuse in one line
naming the format and the tensors, unless a partial load is asked for explicitly (``partial=True`` or
``strict=False``). ``strict=True`` refuses new tensors as well.

Native checkpoints (written by dense-adapters, e.g. the SkipAt retrofit) carry
``{'dense_adapters': {'format_version': 1, 'preset', 'arch_kwargs', 'skip_layers', 'skip_mode'}}`` beside their
``state_dict``: their skip layout must equal the model's, and they load strictly.
"""
from __future__ import annotations

import math
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import CheckpointError, CheckpointMismatch, UserError
from .common import FORMATS, NEW_IN_MODEL, StateDict, droppable_reason, unwrap_checkpoint
from .detect import NATIVE_META_KEY, check_source, detect_source
from .reader import Checkpoint, read_checkpoint

NATIVE_FORMAT_VERSION = 1


# ------------------------------------------------------------------------------------------ native meta
def native_meta(obj: Any) -> Optional[dict]:
    """The ``dense_adapters`` meta of a native checkpoint object, validated; None if there is none."""
    meta = obj.get(NATIVE_META_KEY) if isinstance(obj, dict) else None
    if meta is None:
        return None
    if not isinstance(meta, dict) or not isinstance(meta.get("format_version"), int):
        raise CheckpointError(f"the checkpoint's '{NATIVE_META_KEY}' entry is not a dict with an int format_version")
    if meta["format_version"] > NATIVE_FORMAT_VERSION:
        raise CheckpointError(f"the checkpoint was written in dense-adapters format version {meta['format_version']}"
                              f" (this version reads <= {NATIVE_FORMAT_VERSION}): update dense-adapters")
    return meta


def make_native_checkpoint(vit: nn.Module, *, preset: Optional[str] = None,
                           state_dict: Optional[StateDict] = None, arch_kwargs: Optional[dict] = None) -> dict:
    """``{'state_dict': ..., 'dense_adapters': meta}`` for ``torch.save``: the one definition of the native format.

    ``arch_kwargs`` are the model's constructor arguments (default ``RegViT.arch_kwargs``), so
    :func:`build_from_checkpoint` can rebuild it without a preset; or pass the overrides on ``preset`` to record
    (``PRESETS[preset] | arch_kwargs`` is rebuilt, ``skip_layers`` / ``skip_mode`` taken from the meta).
    """
    kwargs = dict(getattr(vit, "arch_kwargs", {}) or {}) if arch_kwargs is None else dict(arch_kwargs)
    meta = {"format_version": NATIVE_FORMAT_VERSION, "preset": preset, "arch_kwargs": kwargs,
            "skip_layers": [int(i) for i in getattr(vit, "skip_layers", ())],
            "skip_mode": str(getattr(vit, "skip_mode", "parametric"))}
    return {"state_dict": state_dict if state_dict is not None else vit.state_dict(), NATIVE_META_KEY: meta}


_FAMILY_NAMES = {"regvit": "RegViT", "uformer": "Uformer"}


def model_family(model: nn.Module) -> str:
    """'uformer' for a :class:`~dense_adapters.nn.uformer.Uformer`, else 'regvit' (the ViTs)."""
    from ..uformer import Uformer

    return "uformer" if isinstance(model, Uformer) else "regvit"


def _check_family(meta: dict, family: str = "regvit") -> None:
    found = meta.get("family", "regvit")
    if found != family:
        raise CheckpointMismatch(f"the checkpoint holds a {_FAMILY_NAMES.get(found, found)} model, not a "
                                 f"{_FAMILY_NAMES.get(family, family)}: load it with that family's tools (e.g. "
                                 "dense_adapters.retrofit.build_from_retrofit)")


def _skip_layout(model: nn.Module) -> tuple[list[int], Optional[str]]:
    """(skip layers, skip mode) as native meta records them; a Uformer's layers are its SkipAt decoder stages."""
    if model_family(model) == "uformer":
        mode = getattr(model, "skip_mode", None)
        return (list(range(len(model.decoders))) if mode else []), mode
    return sorted(int(i) for i in getattr(model, "skip_layers", ())), getattr(model, "skip_mode", "parametric")


def check_native_layout(meta: dict, model: nn.Module) -> None:
    """Refuse (one line) a native checkpoint of another model family or whose SkipAt layout differs from the model's."""
    _check_family(meta, model_family(model))
    ck_layers = sorted(int(i) for i in meta.get("skip_layers", []))
    ck_mode = meta.get("skip_mode", "parametric")
    m_layers, m_mode = _skip_layout(model)
    if ck_layers != m_layers or (ck_layers and ck_mode != m_mode):
        raise CheckpointMismatch(f"the checkpoint was made with skip_layers={ck_layers}, skip_mode={ck_mode!r} but the "
                                 f"model has skip_layers={m_layers}, skip_mode={m_mode!r}: build the model with "
                                 f"skip_layers={ck_layers}, skip_mode={ck_mode!r}")
    ck_chain = (meta.get("arch_kwargs") or {}).get("skip_chain", "previous")
    m_chain = getattr(model, "skip_chain", "previous")
    if model_family(model) == "regvit" and ck_chain != m_chain and any(b - a > 1 for a, b in zip(m_layers,
                                                                                                   m_layers[1:])):
        raise CheckpointMismatch(f"the checkpoint was trained with skip_chain={ck_chain!r} over the gaps of "
                                 f"skip_layers={m_layers}, the model has skip_chain={m_chain!r}: build it with "
                                 f"skip_chain={ck_chain!r}")


# ---------------------------------------------------------------------------------------------- report
def _short(keys: list[str], n: int = 6) -> str:
    return ", ".join(keys[:n]) + (f" ... (+{len(keys) - n})" if len(keys) > n else "")


@dataclass
class LoadReport:
    """What loading a checkpoint into a RegViT did, printable as one summary."""

    source: str
    path: str = ""
    detected: bool = True
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    dropped: "OrderedDict[str, list[str]]" = field(default_factory=OrderedDict)  # reason -> keys
    skipped_attention: list[str] = field(default_factory=list)
    resized: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    partial: bool = False
    meta: Optional[dict] = None

    @property
    def complete(self) -> bool:
        """Every model tensor came from the checkpoint or is new, and every checkpoint tensor was used or dropped."""
        return not self.missing and not self.unexpected

    def drop(self, key: str, reason: str) -> None:
        self.dropped.setdefault(reason, []).append(key)

    def __str__(self) -> str:
        how = "detected" if self.detected else "as given"
        where = f" from {self.path}" if self.path else ""
        lines = [f"loaded a {self.source} checkpoint ({how}){where}: {len(self.loaded)} tensors"
                 + ("  [PARTIAL LOAD]" if self.partial else "")]
        if self.resized:
            lines.append(f"  resized: {_short(self.resized)}")
        if self.new:
            lines.append(f"  new (the source format has none): {_short(self.new)}")
        if self.skipped_attention:
            lines.append(f"  unused (attention of SkipAt blocks): {len(self.skipped_attention)} tensors")
        for reason, keys in self.dropped.items():
            lines.append(f"  dropped ({reason}): {_short(keys, 3)}")
        lines += [f"  note: {n}" for n in self.notes]
        lines.append(f"  missing ({len(self.missing)}): {_short(self.missing) or '-'}")
        lines.append(f"  unexpected ({len(self.unexpected)}): {_short(self.unexpected) or '-'}")
        return "\n".join(lines)

    def refusal(self, hints: list[str]) -> str:
        """The one-line error of a load that would be partial."""
        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} model tensors would stay uninitialised ({_short(self.missing, 4)})")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} checkpoint tensors would go unused ({_short(self.unexpected, 4)})")
        how = "detected" if self.detected else "as given by --from/source"
        where = f"{self.path}: " if self.path else ""
        hint = "".join(f"; {h}" for h in hints)
        return (f"{where}read as a {self.source!r} checkpoint ({how}), {' and '.join(parts)}{hint}: check the preset"
                " and the format, or ask for a partial load explicitly (partial=True / strict=False / --partial)")


# ---------------------------------------------------------------------------------------------- fitting
def resize_pos_embed(pe: Tensor, new_hw: tuple[int, int], antialias: bool = True) -> Tensor:
    """Bicubic resize of a patch-only position embedding [1, h*w, C] (square source) to ``new_hw``."""
    n = pe.shape[1]
    g = math.isqrt(n)
    if g * g != n:
        raise CheckpointMismatch(f"cannot resize a position embedding of {n} tokens: not a square grid")
    x = pe.float().reshape(1, g, g, -1).permute(0, 3, 1, 2)
    x = F.interpolate(x, size=tuple(new_hw), mode="bicubic", antialias=antialias)
    return x.flatten(2).transpose(1, 2).to(pe.dtype)


def _check_rope(sd: StateDict, model: nn.Module, report: LoadReport) -> None:
    periods = sd.get("rope_embed.periods")
    rope = getattr(model, "rope_embed", None)
    if periods is None or rope is None:
        return
    ours = rope.periods.detach().float().cpu()
    theirs = periods.detach().float().cpu().flatten()
    if theirs.shape != ours.shape or not torch.allclose(theirs, ours, rtol=1e-2, atol=0):
        raise CheckpointMismatch(f"the checkpoint's RoPE periods ({theirs.numel()} per axis, {theirs[:3].tolist()}...) "
                                 f"differ from the model's ({ours.numel()}, {ours[:3].tolist()}...): check rope_base / "
                                 "rope_min_period / rope_max_period and the head dimension")
    rel = float(((theirs - ours).abs() / ours).max()) if ours.numel() else 0.0
    if rel > 0:
        report.notes.append(f"RoPE periods: the checkpoint stores them rounded (max rel. diff {rel:.1e}, bf16); the "
                            "model computes them in float32 (rope_periods_dtype='bf16' reproduces the rounding)")


def adapt_to_model(sd: StateDict, model: nn.Module, source: str = "converted",
                   outside: tuple[str, ...] = ()) -> tuple[StateDict, LoadReport]:
    """Fit a converted state dict to ``model`` (a RegViT) and classify every tensor (see the module docstring).

    Resizes ``pos_embed``, drops SkipAt blocks' attention and known-droppable tensors, checks register count, RoPE
    periods, shapes and finiteness (one-line :class:`CheckpointMismatch` / :class:`CheckpointError`). Returns the
    tensors to load and the report; it does not decide whether a partial load is acceptable.
    """
    report = LoadReport(source)
    own = model.state_dict()
    sd = dict(sd)
    for k in outside:
        report.drop(k, "outside the backbone of a whole-model checkpoint")
    reg_ckpt = sd["reg_token"].shape[1] if "reg_token" in sd else 0
    reg_model = getattr(model, "num_register_tokens", reg_ckpt)
    if reg_ckpt != reg_model:
        raise CheckpointMismatch(f"checkpoint has {reg_ckpt} register tokens but the model has {reg_model}: set "
                                 f"num_register_tokens={reg_ckpt}")
    _check_rope(sd, model, report)
    if "pos_embed" in sd and "pos_embed" in own and sd["pos_embed"].shape != own["pos_embed"].shape:
        sd["pos_embed"] = resize_pos_embed(sd["pos_embed"], model.grid_size, getattr(model, "interpolate_antialias",
                                                                                      True))
        report.resized.append(f"pos_embed {tuple(model.grid_size)}")
    for i in getattr(model, "skip_layers", ()):
        for k in [k for k in sd if k.startswith((f"blocks.{i}.attn.", f"blocks.{i}.norm1."))]:
            report.skipped_attention.append(k)
            del sd[k]
    for k in [k for k in sd if k not in own]:
        if k.endswith(".bias") and k[: -4] + "weight" in own and not bool(sd[k].any()):
            report.drop(k, "all-zero bias of a layer that has none in this model")
            del sd[k]
            continue
        reason = droppable_reason(k)
        if reason is not None:
            report.drop(k, reason)
            del sd[k]
    bad = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
           for k, v in sd.items() if k in own and v.shape != own[k].shape]
    if bad:
        raise CheckpointMismatch(f"the {source} checkpoint does not fit this architecture ({len(bad)} shape "
                                 f"mismatches): {bad[0]}" + (f"; +{len(bad) - 1} more" if len(bad) > 1 else "")
                                 + ": check arch/patch_size/embed_dim/ffn against the checkpoint")
    nonfinite = [k for k, v in sd.items() if k in own and v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if nonfinite:
        raise CheckpointError(f"checkpoint tensor {nonfinite[0]} holds NaN/inf" + (
            f" (+{len(nonfinite) - 1} more)" if len(nonfinite) > 1 else "") + ": the file is damaged or was saved "
            "from a diverged run")
    report.unexpected = [k for k in sd if k not in own]
    for k in [k for k in own if k not in sd]:
        new = next((what for pat, what in NEW_IN_MODEL if re.search(pat, k)
                    and not any(re.search(pat, c) for c in sd)), None)
        (report.new if new else report.missing).append(k)
    load = {k: v for k, v in sd.items() if k in own}
    report.loaded = list(load)
    return load, report


def _hints(report: LoadReport, sd: StateDict, model: nn.Module) -> list[str]:
    own = model.state_dict()
    hints = []
    if "pos_embed" in report.missing:
        hints.append("the checkpoint has no position-embedding table (a RoPE model such as DINOv3): use a RoPE preset "
                     "(dinov3_*) or rope=True, use_pos_embed=False")
    if "pos_embed" in report.unexpected and "pos_embed" not in own:
        hints.append("the checkpoint has a position-embedding table but this model uses RoPE: use a preset with "
                     "use_pos_embed=True")
    if any(k.startswith("norm_pre.") for k in report.missing):
        hints.append("the model has norm_pre (CLIP's ln_pre) but the checkpoint does not: set norm_pre=False")
    if any(k.startswith("norm_pre.") for k in report.unexpected):
        hints.append("the checkpoint has a pre-norm (ln_pre): set norm_pre=True (the openclip_* presets do)")
    phis = {k.split(".", 1)[0] for k in report.unexpected if re.match(r"^param_\d+\.", k)}
    if phis:
        hints.append(f"the checkpoint holds {len(phis)} SkipAt Phi modules (param_1..): build the model with "
                     f"{len(phis)} skip_layers (SkipAt's released models: skip_layers=(3, 4, 5, 6, 7, 8), presets "
                     "skipat_*_patch16_224)")
    guess = detect_source(sd, none_ok=True) if report.unexpected else None
    if guess is not None and guess != report.source and FORMATS[guess].family != FORMATS[report.source].family:
        hints.append(f"the unused tensors look like the {guess!r} format")
    return hints


# ---------------------------------------------------------------------------------------------- loading
def load_pretrained(
    model: nn.Module,
    path: Union[str, Checkpoint],
    source: str = "auto",
    strict: Optional[bool] = None,
    trust_pickle: bool = False,
    *,
    partial: bool = False,
    map_location: str = "cpu",
) -> LoadReport:
    """Convert and load a checkpoint (file, Hugging Face folder, URL or a :class:`Checkpoint` already read) into
    ``model``; return the :class:`LoadReport`.

    ``source``: ``'auto'`` (detect from the keys / config.json / native meta) or a name of ``FORMATS`` (refused when
    the keys clearly say otherwise). By default a load that would leave a model tensor uninitialised or a checkpoint
    tensor unused raises :class:`CheckpointMismatch`; ``partial=True`` (or ``strict=False``) allows it (the report
    says PARTIAL LOAD); ``strict=True`` also refuses new tensors. Native checkpoints load strictly.
    """
    if strict is True and partial:
        raise UserError("strict=True and partial=True contradict each other: pick one")
    ckpt = path if isinstance(path, Checkpoint) else read_checkpoint(path, map_location=map_location,
                                                                     trust_pickle=trust_pickle)
    meta = native_meta(ckpt.obj)
    raw, outside = unwrap_checkpoint(ckpt.obj)
    auto = source == "auto"
    detected = detect_source(ckpt.obj if meta else raw, ckpt.hf_config, none_ok=not auto)
    if auto:
        source = detected
    else:
        check_source(source, detected)
    fmt, family = FORMATS[source], model_family(model)
    if fmt.model_family != family:
        raise CheckpointMismatch(
            f"{ckpt.source} is a {fmt.name!r} checkpoint ({fmt.description}), which holds a "
            f"{_FAMILY_NAMES.get(fmt.model_family, fmt.model_family)}, but the model is a "
            f"{_FAMILY_NAMES.get(family, family)}: load it into that model (docs/backbones.md lists the formats)")
    if meta is not None:
        check_native_layout(meta, model)
        strict = True if strict is None and not partial else strict
    notes = []
    if fmt.containers is not None:  # the format's own loader looks in another order (e.g. SkipAt: EMA first)
        raw, outside = unwrap_checkpoint(ckpt.obj, fmt.containers)
        taken = next((k for k in fmt.containers if isinstance(ckpt.obj, dict) and isinstance(ckpt.obj.get(k), dict)),
                     None)
        if taken is not None and len([k for k in fmt.containers if isinstance(ckpt.obj.get(k), dict)]) > 1:
            notes.append(f"weights taken from {taken!r} (the {fmt.name} loader's order: {', '.join(fmt.containers)})")
    converted = fmt.convert(raw, **(fmt.model_kwargs(model) if fmt.model_kwargs else {}))
    sd, report = adapt_to_model(converted, model, source, tuple(outside))
    report.path, report.detected, report.meta = ckpt.source, auto, meta
    report.notes += notes
    allow_partial = partial or strict is False
    if not allow_partial and not report.complete:
        raise CheckpointMismatch(report.refusal(_hints(report, raw, model)))
    if strict is True and report.new:
        raise CheckpointMismatch(f"{ckpt.source}: strict load, but {len(report.new)} model tensors are not in the "
                                 f"checkpoint ({_short(report.new, 4)}): drop strict=True to accept them as new")
    result = model.load_state_dict(sd, strict=False)
    if result.unexpected_keys:  # cannot happen: adapt_to_model only keeps the model's own keys
        raise CheckpointMismatch(f"internal: unexpected keys after fitting: {result.unexpected_keys[:3]}")
    report.partial = allow_partial and not report.complete
    return report



def build_from_checkpoint(path: Union[str, Checkpoint], *, source: str = "auto", trust_pickle: bool = False,
                          partial: bool = False, strict: Optional[bool] = None, map_location: str = "cpu",
                          **overrides) -> tuple[nn.Module, LoadReport]:
    """Build the RegViT a checkpoint describes and load it: a Hugging Face folder (its ``config.json``) or a native
    checkpoint (its ``preset``/``arch_kwargs`` meta). Other checkpoints name no architecture: pass a preset instead
    (``create_regvit(name)`` + :func:`load_pretrained`). ``overrides`` change constructor arguments (e.g.
    ``pad_mode``, ``skip_layers``)."""
    from ..vit import PRESETS, RegViT
    from .hf import regvit_kwargs_from_hf_config

    ckpt = path if isinstance(path, Checkpoint) else read_checkpoint(path, map_location=map_location,
                                                                     trust_pickle=trust_pickle)
    meta = native_meta(ckpt.obj)
    if ckpt.hf_config is not None:
        kwargs = regvit_kwargs_from_hf_config(ckpt.hf_config)
    elif meta is not None:
        _check_family(meta)
        kwargs = dict(PRESETS.get(meta.get("preset") or "", {}))
        kwargs.update(meta.get("arch_kwargs") or {})
        kwargs.setdefault("skip_layers", meta.get("skip_layers", ()))
        kwargs.setdefault("skip_mode", meta.get("skip_mode", "parametric"))
    else:
        raise CheckpointMismatch(f"{ckpt.source} names no architecture (no config.json, no dense_adapters meta): give "
                                 "a preset (--arch NAME / create_regvit(NAME))")
    model = RegViT(**{**kwargs, **overrides})
    report = load_pretrained(model, ckpt, source=source, strict=strict, partial=partial)
    return model, report


def build_uformer_from_checkpoint(path: Union[str, Checkpoint], *, source: str = "auto", trust_pickle: bool = False,
                                  partial: bool = False, strict: Optional[bool] = None, map_location: str = "cpu",
                                  **overrides) -> tuple[nn.Module, LoadReport]:
    """Build the :class:`~dense_adapters.nn.uformer.Uformer` a Uformer checkpoint holds (the authors' release or
    ours; the architecture is read from the tensor shapes) and load it. ``overrides`` set constructor arguments the
    weights do not show, e.g. ``shift_from_size=128`` for the authors' SIDD models."""
    from ..uformer import Uformer
    from .uformer import uformer_kwargs_from_state_dict

    ckpt = path if isinstance(path, Checkpoint) else read_checkpoint(path, map_location=map_location,
                                                                     trust_pickle=trust_pickle)
    raw, _ = unwrap_checkpoint(ckpt.obj)
    meta = native_meta(ckpt.obj)
    detected = detect_source(ckpt.obj if meta else raw, ckpt.hf_config, none_ok=source != "auto")
    name = detected if source == "auto" else source
    if name not in FORMATS or FORMATS[name].model_family != "uformer":
        raise CheckpointMismatch(f"{ckpt.source} is a {name!r} checkpoint, not a Uformer's: use build_from_checkpoint"
                                 " / a RegViT preset for it")
    kwargs = uformer_kwargs_from_state_dict(FORMATS[name].convert(raw))
    model = Uformer(**{**kwargs, **overrides})
    report = load_pretrained(model, ckpt, source=source, strict=strict, partial=partial)
    return model, report
