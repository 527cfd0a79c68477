"""Pure state-dict converters from public ViT checkpoints to RegViT, and loading with a readable report.

Each converter maps a foreign state dict to RegViT's names (timm's, see vit.py); ``adapt_to_model`` then resizes
position embeddings, drops attention weights of SkipAt blocks and lists what is missing or unexpected.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

StateDict = dict[str, Tensor]
_DROP_PREFIXES = ("head.", "fc_norm.", "head_drop.", "dino_head.", "ibot_head.")


def unwrap_state_dict(obj: dict) -> StateDict:
    """Find the model weights in a training checkpoint and strip wrapper prefixes ('module.', 'backbone.')."""
    for key in ("state_dict", "model", "teacher", "model_ema"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ValueError("checkpoint holds no state dict of tensors (looked at the top level and under "
                         "'state_dict', 'model', 'teacher', 'model_ema')")
    out = dict(obj)
    for prefix in ("module.", "backbone.", "encoder.", "vit."):
        # a whole-model checkpoint (segmentor, restorer): keep the backbone part only
        if any(k.startswith(prefix) for k in out):
            out = {k[len(prefix):]: v for k, v in out.items() if k.startswith(prefix)}
    return out


def _square_prefix(n_pos: int, candidates: tuple[int, ...]) -> int:
    for p in candidates:
        if n_pos - p > 0 and math.isqrt(n_pos - p) ** 2 == n_pos - p:
            return p
    raise ValueError(f"cannot tell prefix entries in a position embedding of {n_pos} tokens: expected a square grid")


def _fold_prefix_pos(sd: StateDict, num_pos_prefix: int) -> StateDict:
    """Move the position embedding of prefix tokens into the tokens themselves (exact: it is never resized)."""
    if num_pos_prefix == 0:
        return sd
    pe = sd["pos_embed"]
    prefix_pe, sd["pos_embed"] = pe[:, :num_pos_prefix], pe[:, num_pos_prefix:]
    tokens = [k for k in ("cls_token", "reg_token") if k in sd]
    stacked = torch.cat([sd[k] for k in tokens], dim=1)  # [1, cls + registers, C]
    if stacked.shape[1] < num_pos_prefix:
        raise ValueError(f"position embedding has {num_pos_prefix} prefix entries but the checkpoint has only "
                         f"{stacked.shape[1]} prefix tokens")
    # DINOv2 embeds only cls (registers come after the position embedding); timm may embed cls and registers
    stacked = torch.cat([stacked[:, :num_pos_prefix] + prefix_pe, stacked[:, num_pos_prefix:]], dim=1)
    start = 0
    for k in tokens:
        n = sd[k].shape[1]
        sd[k] = stacked[:, start : start + n]
        start += n
    return sd


def _drop_heads(sd: StateDict) -> StateDict:
    return {k: v for k, v in sd.items() if not k.startswith(_DROP_PREFIXES) and k != "mask_token"}


def convert_dinov2(sd: StateDict) -> StateDict:
    """DINOv2 (facebookresearch/dinov2, with or without registers) -> RegViT.

    ``register_tokens`` -> ``reg_token``; the cls entry of ``pos_embed`` (1 + 37x37) is folded into
    ``cls_token``; chunked ``blocks.<chunk>.<i>`` are flattened; SwiGLU ``mlp.w12``/``mlp.w3`` -> ``fc1``/``fc2``.
    """
    sd = _drop_heads(unwrap_state_dict(sd))
    out: StateDict = {}
    for k, v in sd.items():
        k = re.sub(r"^blocks\.\d+\.(\d+)\.", r"blocks.\1.", k) if re.match(r"^blocks\.\d+\.\d+\.", k) else k
        k = k.replace("register_tokens", "reg_token").replace("mlp.w12.", "mlp.fc1.").replace("mlp.w3.", "mlp.fc2.")
        out[k] = v
    return _fold_prefix_pos(out, 1)


def convert_timm(sd: StateDict) -> StateDict:
    """timm ``VisionTransformer`` (augreg, DeiT, ``vit_*_reg4_dinov2`` with ``no_embed_class``) -> RegViT."""
    sd = _drop_heads(unwrap_state_dict(sd))
    sd = {re.sub(r"gamma_([12])$", r"ls\1.gamma", k) if ".gamma_" in k else k: v for k, v in sd.items()}
    n_prefix = sum(sd[k].shape[1] for k in ("cls_token", "reg_token") if k in sd)
    return _fold_prefix_pos(sd, _square_prefix(sd["pos_embed"].shape[1], (0, n_prefix) if n_prefix else (0,)))


def convert_deit3(sd: StateDict) -> StateDict:
    """DeiT-III (facebookresearch/deit ``deit_3_*``: ``blocks.i.gamma_1/2``, patch-only ``pos_embed``) -> RegViT."""
    return convert_timm(sd)


def convert_native(sd: StateDict) -> StateDict:
    """A RegViT checkpoint (possibly saved by mmengine under 'state_dict' with a 'backbone.' prefix)."""
    return unwrap_state_dict(sd)


CONVERTERS: dict[str, Callable[[StateDict], StateDict]] = {
    "dinov2": convert_dinov2,
    "timm": convert_timm,
    "deit3": convert_deit3,
    "native": convert_native,
}


def detect_source(sd: StateDict) -> str:
    """Guess which converter a state dict needs."""
    keys = unwrap_state_dict(sd).keys()
    if "register_tokens" in keys or "mask_token" in keys or any(".mlp.w12." in k for k in keys):
        return "dinov2"
    if any(k.endswith((".gamma_1", ".gamma_2")) for k in keys):
        return "deit3"
    return "timm"


def load_file(path: str, map_location: str = "cpu", trust_pickle: bool = False) -> dict:
    """Read a checkpoint from a local path or a URL (http(s)/file; downloaded once into torch.hub's cache):
    safetensors, or torch.load with weights_only=True.

    ``trust_pickle=True`` allows arbitrary pickled objects: only for files from a source you trust.
    """
    if path.startswith(("http://", "https://", "file://")):
        cache = os.path.join(torch.hub.get_dir(), "checkpoints")
        os.makedirs(cache, exist_ok=True)
        local = os.path.join(cache, os.path.basename(path.split("?")[0]))
        if not os.path.exists(local):
            torch.hub.download_url_to_file(path, local)
        path = local
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}: give a local file or an http(s) URL")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file as load_safetensors

        return load_safetensors(path, device=map_location)
    try:
        return torch.load(path, map_location=map_location, weights_only=not trust_pickle)
    except Exception as e:  # UnpicklingError and friends
        if trust_pickle or "weights_only" not in str(e).lower() and "unpickl" not in str(e).lower():
            raise
        raise RuntimeError(f"{path} needs arbitrary code to unpickle, so it was refused; load it only if you trust "
                           "its source (trust_pickle=True / --trust-pickle), or re-save its state_dict") from None


def resize_pos_embed(pe: Tensor, new_hw: tuple[int, int], antialias: bool = True) -> Tensor:
    """Bicubic resize of a patch-only position embedding [1, h*w, C] (square source) to new_hw."""
    n = pe.shape[1]
    g = math.isqrt(n)
    if g * g != n:
        raise ValueError(f"cannot resize a position embedding of {n} tokens: not a square grid")
    x = pe.float().reshape(1, g, g, -1).permute(0, 3, 1, 2)
    x = F.interpolate(x, size=new_hw, mode="bicubic", antialias=antialias)
    return x.flatten(2).transpose(1, 2).to(pe.dtype)


@dataclass
class LoadReport:
    """What loading a checkpoint into a RegViT did, printable as one summary."""

    source: str
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    skipped_attention: list[str] = field(default_factory=list)
    resized: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        def short(keys: list[str]) -> str:
            return ", ".join(keys[:8]) + (f" ... (+{len(keys) - 8})" if len(keys) > 8 else "")

        lines = [f"loaded a {self.source} checkpoint"]
        if self.resized:
            lines.append(f"  resized: {short(self.resized)}")
        if self.skipped_attention:
            lines.append(f"  unused (attention of SkipAt blocks): {len(self.skipped_attention)} tensors")
        lines.append(f"  missing ({len(self.missing)}): {short(self.missing) or '-'}")
        lines.append(f"  unexpected ({len(self.unexpected)}): {short(self.unexpected) or '-'}")
        return "\n".join(lines)


def adapt_to_model(sd: StateDict, model: nn.Module, source: str = "converted") -> tuple[StateDict, LoadReport]:
    """Fit a converted state dict to ``model`` (a RegViT): resize pos_embed, drop SkipAt blocks' attention.

    Raises a one-line error for a register count or tensor shape that cannot match.
    """
    report = LoadReport(source)
    own = model.state_dict()
    sd = dict(sd)
    reg_ckpt = sd["reg_token"].shape[1] if "reg_token" in sd else 0
    if reg_ckpt != getattr(model, "num_register_tokens", reg_ckpt):
        raise ValueError(f"checkpoint has {reg_ckpt} register tokens but the model has "
                         f"{model.num_register_tokens}: set num_register_tokens={reg_ckpt}")
    if "pos_embed" in sd and sd["pos_embed"].shape != own["pos_embed"].shape:
        sd["pos_embed"] = resize_pos_embed(sd["pos_embed"], model.grid_size, model.interpolate_antialias)
        report.resized.append(f"pos_embed {model.grid_size}")
    for i in getattr(model, "skip_layers", ()):
        for k in [k for k in sd if k.startswith((f"blocks.{i}.attn.", f"blocks.{i}.norm1."))]:
            report.skipped_attention.append(k)
            del sd[k]
    bad = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
           for k, v in sd.items() if k in own and v.shape != own[k].shape]
    if bad:
        raise ValueError(f"checkpoint does not fit this architecture ({len(bad)} shape mismatches): {bad[0]}"
                         + (f"; +{len(bad) - 1} more" if len(bad) > 1 else "")
                         + ": check arch/patch_size/embed_dim against the checkpoint")
    report.missing = [k for k in own if k not in sd]
    report.unexpected = [k for k in sd if k not in own]
    return {k: v for k, v in sd.items() if k in own}, report


def load_pretrained(
    model: nn.Module, path: str, source: str = "auto", strict: bool = False, trust_pickle: bool = False
) -> LoadReport:
    """Load a DINOv2 / timm / DeiT-III / RegViT checkpoint into ``model``; return a :class:`LoadReport`.

    ``strict=True`` raises when anything is missing or unexpected (SkipAt-dropped attention does not count).
    """
    raw = load_file(path, trust_pickle=trust_pickle)
    raw = unwrap_state_dict(raw)
    if source == "auto":
        source = detect_source(raw)
    if source not in CONVERTERS:
        raise ValueError(f"unknown checkpoint source {source!r}: use one of {sorted(CONVERTERS)} or 'auto'")
    sd, report = adapt_to_model(CONVERTERS[source](raw), model, source)
    if strict and (report.missing or report.unexpected):
        raise ValueError(str(report))
    model.load_state_dict(sd, strict=False)
    return report
