"""Shared pieces of the converters: the registry of source formats, the ONE table of droppable tensors, helpers.

A converter is a pure function ``state_dict -> state_dict`` in RegViT's names. It renames what it knows and leaves
every key it does not know unchanged, so that nothing a checkpoint holds disappears silently: after conversion,
each key is either loaded into the model, named in :data:`DROPPABLE` (with the reason it may go), attention of a
SkipAt block, or reported as unused (and the load refuses unless a partial load was asked for).

To add a source format: write ``convert_x(sd) -> sd`` and ``looks_like_x(state_dict) -> bool`` in a new file of this
package, call :func:`register_converter` there, import the file from ``__init__.py``, and add its known-droppable
tensors to :data:`DROPPABLE` below (one line each). ``skipat.py`` (a converter that needs the model's skip layout)
and ``uformer.py`` (another model family) show the optional arguments.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Collection, Iterable, Mapping, Optional

import torch
from torch import Tensor

from ...errors import CheckpointError, CheckpointMismatch

StateDict = dict[str, Tensor]
Detector = Callable[[Mapping[str, Tensor]], bool]  # gets the unwrapped state dict (keys, and shapes if needed)

# ----------------------------------------------------------------------------------- droppable tensors
# (regex on the converted key, why it may be dropped). The ONE place that says which checkpoint tensors a load may
# leave unused without being a partial load; everything else that no converter consumed is an error.
DROPPABLE: list[tuple[str, str]] = [
    (r"^(head|head_dist|fc_norm|head_drop|pre_logits)\.", "classifier head"),
    (r"^(dino_head|ibot_head|projectors|local_cls_norm)\.", "self-supervised training head / training-only norm"),
    (r"^mask_token$", "mask token (masked-image pretraining only; this model has none)"),
    (r"(^|\.)rope(_embed)?\.(periods|freqs|inv_freq)$", "RoPE frequencies (recomputed, no weights)"),
    (r"\.attn\.qkv\.bias_mask$", "DINOv3 K-bias mask (applied by the converter)"),
    (r"^(decode_head|auxiliary_head|neck|data_preprocessor)\.", "non-backbone part of a whole-model checkpoint"),
    (r"^(visual\.)?proj$", "CLIP image projection (to the joint embedding)"),
    (r"^(token_embedding|positional_embedding|ln_final|text_projection|logit_scale|logit_bias|transformer)(\.|$)",
     "text tower of a CLIP checkpoint"),
    (r"^text\.", "text tower of a CLIP checkpoint"),
    (r"^(pooler|classifier|layernorm_cls)\.", "Hugging Face task head"),
    (r"^(encoders\.\d+|bottleneck|decoders\.\d+)\.blocks\.\d+\.attn\.relative_position_index$",
     "Uformer's stored relative position index (recomputed; the converter checked it equals the model's)"),
]

# (regex on a model key, what it is): model tensors a source format cannot have. Reported as "new" (not missing)
# when the checkpoint holds no key matching the same pattern.
NEW_IN_MODEL: list[tuple[str, str]] = [
    (r"^blocks\.\d+\.skip_fn\.", "SkipAt Phi (plain checkpoints have none)"),
    (r"^mask_token$", "mask token (absent from this checkpoint format)"),
]


def droppable_reason(key: str) -> Optional[str]:
    """Why ``key`` may be left unused, or None if it may not."""
    for pattern, reason in DROPPABLE:
        if re.search(pattern, key):
            return reason
    return None


# -------------------------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class SourceFormat:
    """A checkpoint family: how to recognise it and how to convert it to RegViT names."""

    name: str
    convert: Callable[[StateDict], StateDict]
    detect: Optional[Detector]
    description: str
    family: str  # formats of one family are interchangeable for --from (timm / deit3)
    priority: int  # detection order: lower first (more specific signatures first)
    model_family: str = "regvit"  # the model class it converts to: 'regvit' or 'uformer'
    # converter keyword arguments read from the target model (e.g. SkipAt: where its Phi modules go); without a
    # model (tools/convert_checkpoint.py without --preset) the converter's defaults apply
    model_kwargs: Optional[Callable[[Any], dict]] = None
    containers: Optional[tuple[str, ...]] = None  # the format's own order of checkpoint containers (unwrap_checkpoint)


FORMATS: dict[str, SourceFormat] = {}
CONVERTERS: dict[str, Callable[[StateDict], StateDict]] = {}


def register_converter(name: str, convert: Callable[[StateDict], StateDict], detect: Optional[Detector] = None,
                       description: str = "", family: Optional[str] = None, priority: int = 50, *,
                       model_family: str = "regvit", model_kwargs: Optional[Callable[[Any], dict]] = None,
                       containers: Optional[tuple[str, ...]] = None) -> SourceFormat:
    """Register a source format under ``name`` (its converter is then offered by ``--from`` and auto-detected).

    ``model_family``: the model class it converts to (``'regvit'``, ``'uformer'``; a load into another class is
    refused). ``model_kwargs(model) -> dict``: converter arguments taken from the target model. ``containers``: the
    keys under which the format's files keep their weights, in the order its own loader tries them.
    """
    fmt = SourceFormat(name, convert, detect, description or name, family or name, priority, model_family,
                       model_kwargs, containers)
    FORMATS[name] = fmt
    CONVERTERS[name] = convert
    return fmt


def source_names() -> list[str]:
    return sorted(FORMATS)


# ------------------------------------------------------------------------------------------- unwrapping
CONTAINER_KEYS = ("state_dict", "model", "teacher", "model_ema", "state_dict_ema", "module", "student")


def _is_state_dict(obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, Tensor) for v in obj.values())


def unwrap_checkpoint(obj, containers: Optional[Iterable[str]] = None) -> tuple[StateDict, list[str]]:
    """The backbone weights of a checkpoint object and the keys left outside them (whole-model checkpoints).

    Looks under 'state_dict', 'model', 'teacher', 'model_ema', 'state_dict_ema', 'module' (or ``containers``, in that
    order; nested, first match), strips a 'module.' prefix (DDP), keeps the 'backbone.' part of a whole-model
    checkpoint (segmentor, DINO teacher) and then a 'vit.' prefix (dense_adapters' mmseg wrapper), or the
    'generator.net.' part of a restorer (dense_adapters' Restorer with a Uformer). Non-tensor entries (optimizer
    state, meta) are ignored.
    """
    seen = 0
    order = tuple(containers) if containers is not None else CONTAINER_KEYS
    while isinstance(obj, dict) and not _is_state_dict(obj) and seen < 4:
        inner = next((obj[k] for k in order if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj, seen = inner, seen + 1
    if not isinstance(obj, dict):
        raise CheckpointError(f"checkpoint holds a {type(obj).__name__}, not a state dict of tensors")
    sd = {k: v for k, v in obj.items() if isinstance(v, Tensor)}
    if not sd:
        raise CheckpointError("checkpoint holds no tensors (looked at the top level and under "
                              f"{', '.join(repr(k) for k in CONTAINER_KEYS)})")
    outside: list[str] = []
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    if any(k.startswith("backbone.") for k in sd):
        outside = [k for k in sd if not k.startswith("backbone.")]
        sd = {k[len("backbone."):]: v for k, v in sd.items() if k.startswith("backbone.")}
    if all(k.startswith("vit.") for k in sd):
        sd = {k[len("vit."):]: v for k, v in sd.items()}
    if any(k.startswith("generator.net.") for k in sd) and not outside:
        outside = [k for k in sd if not k.startswith("generator.net.")]
        sd = {k[len("generator.net."):]: v for k, v in sd.items() if k.startswith("generator.net.")}
    return sd, outside


def unwrap_state_dict(obj) -> StateDict:
    """The backbone state dict of a checkpoint object (see :func:`unwrap_checkpoint`)."""
    return unwrap_checkpoint(obj)[0]


# --------------------------------------------------------------------------------------------- helpers
def require(sd: StateDict, keys: Iterable[str], fmt: str) -> None:
    """Raise one line if a converter's required keys are absent (a different format was given to it)."""
    missing = [k for k in keys if k not in sd]
    if missing:
        raise CheckpointMismatch(f"not a {fmt} checkpoint: it has no {', '.join(missing[:3])} (first keys: "
                                 f"{', '.join(list(sd)[:4])}): drop --from / source= to detect the format")


def square_prefix(n_pos: int, candidates: Iterable[int]) -> int:
    """How many prefix entries a position embedding of ``n_pos`` tokens has (the rest must be a square grid)."""
    for p in candidates:
        if n_pos - p > 0 and math.isqrt(n_pos - p) ** 2 == n_pos - p:
            return p
    raise CheckpointMismatch(f"cannot tell the prefix entries of a position embedding of {n_pos} tokens: the patch "
                             "part must be a square grid")


def fold_prefix_pos(sd: StateDict, num_pos_prefix: int) -> StateDict:
    """Move the position embedding of prefix tokens into the tokens themselves (exact: prefix entries are never
    resized), leaving a patch-only ``pos_embed``."""
    if num_pos_prefix == 0:
        return sd
    sd = dict(sd)
    pe = sd["pos_embed"]
    prefix_pe, sd["pos_embed"] = pe[:, :num_pos_prefix], pe[:, num_pos_prefix:]
    tokens = [k for k in ("cls_token", "reg_token") if k in sd]
    if not tokens:
        raise CheckpointMismatch("the position embedding has a cls entry but the checkpoint has no cls token")
    stacked = torch.cat([sd[k] for k in tokens], dim=1)  # [1, cls + registers, C]
    if stacked.shape[1] < num_pos_prefix:
        raise CheckpointMismatch(f"the position embedding has {num_pos_prefix} prefix entries but the checkpoint has "
                                 f"only {stacked.shape[1]} prefix tokens")
    stacked = torch.cat([stacked[:, :num_pos_prefix] + prefix_pe.to(stacked.dtype), stacked[:, num_pos_prefix:]], 1)
    start = 0
    for k in tokens:
        n = sd[k].shape[1]
        sd[k] = stacked[:, start : start + n]
        start += n
    return sd


def rename(sd: StateDict, rules: Iterable[tuple[str, str]]) -> StateDict:
    """Apply regex substitutions, in order, to every key."""
    rules = [(re.compile(a), b) for a, b in rules]
    out: StateDict = {}
    for k, v in sd.items():
        for pat, rep in rules:
            k = pat.sub(rep, k)
        out[k] = v
    return out


def zero_bias_if_absent(sd: StateDict, weight_key: str) -> StateDict:
    """A layer stored without bias computes what a zero bias computes: give it an explicit zero one (the loader drops
    an all-zero bias again where the model has none), so bias-free sources fit models with and without a bias."""
    bias_key = weight_key[: -len("weight")] + "bias"
    if weight_key in sd and bias_key not in sd:
        sd[bias_key] = torch.zeros(sd[weight_key].shape[0], dtype=sd[weight_key].dtype)
    return sd


def any_key(keys: Collection[str], pattern: str) -> bool:
    rx = re.compile(pattern)
    return any(rx.search(k) for k in keys)
