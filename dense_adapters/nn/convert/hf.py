"""Hugging Face checkpoints: ``DINOv3ViTModel``, ``Dinov2Model``, ``Dinov2WithRegistersModel``.

Accepted key names: those of the files published on the hub (``layer.i.attention.q_proj`` for DINOv3;
``encoder.layer.i.attention.attention.query``, ``attention.output.dense``, ``mlp.weights_in/weights_out`` for DINOv2)
and those transformers 5 uses internally and writes with ``save_pretrained`` (``model.layer.i`` for DINOv3;
``attention.q_proj``/``o_proj``, ``mlp.gate_proj/up_proj/down_proj`` for DINOv2). A ``config.json`` next to the
weights gives the architecture (:func:`regvit_kwargs_from_hf_config`), so no preset is needed.
"""
from __future__ import annotations

import re
from typing import Collection

import torch

from ...errors import CheckpointMismatch
from .common import StateDict, any_key, fold_prefix_pos, register_converter

HF_MODEL_TYPES = ("dinov3_vit", "dinov2", "dinov2_with_registers")
_LAYER = r"^(?:model\.|encoder\.)?layer\.(\d+)\."


def _strip_base(sd: StateDict) -> StateDict:
    """``dinov2.`` / ``dinov3.`` / ``dinov2_with_registers.`` prefixes of task models (e.g. ...ForImageClassification)."""
    for base in ("dinov2_with_registers.", "dinov2.", "dinov3.", "dinov3_vit."):
        if any(k.startswith(base) for k in sd):
            return {(k[len(base):] if k.startswith(base) else k): v for k, v in sd.items()}
    return sd


def _stack_qkv(sd: StateDict, out: StateDict, prefix: str, names: tuple[str, str, str], dst: str) -> None:
    """Concatenate separate q/k/v projections (weight, and bias with zeros where a projection has none)."""
    q, k, v = (prefix + n for n in names)
    if q + ".weight" not in sd:
        return
    out[dst + ".weight"] = torch.cat([sd.pop(q + ".weight"), sd.pop(k + ".weight"), sd.pop(v + ".weight")])
    biases = [sd.pop(n + ".bias", None) for n in (q, k, v)]
    if any(b is not None for b in biases):
        ref = next(b for b in biases if b is not None)
        out[dst + ".bias"] = torch.cat([b if b is not None else torch.zeros_like(ref) for b in biases])


def _pack(sd: StateDict, out: StateDict, gate: str, up: str, dst: str) -> None:
    for kind in ("weight", "bias"):
        if f"{gate}.{kind}" in sd and f"{up}.{kind}" in sd:
            out[f"{dst}.{kind}"] = torch.cat([sd.pop(f"{gate}.{kind}"), sd.pop(f"{up}.{kind}")])


_EMBED = {
    "embeddings.cls_token": "cls_token",
    "embeddings.register_tokens": "reg_token",
    "embeddings.mask_token": "mask_token",
    "embeddings.position_embeddings": "pos_embed",
    "embeddings.patch_embeddings.weight": "patch_embed.proj.weight",
    "embeddings.patch_embeddings.bias": "patch_embed.proj.bias",
    "embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
    "embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
    "norm.weight": "norm.weight", "norm.bias": "norm.bias",
    "layernorm.weight": "norm.weight", "layernorm.bias": "norm.bias",
}
_BLOCK = [  # (hf suffix after 'layer.i.', RegViT suffix after 'blocks.i.')
    (r"norm1\.", "norm1."), (r"norm2\.", "norm2."),
    (r"attention\.o_proj\.", "attn.proj."), (r"attention\.output\.dense\.", "attn.proj."),
    (r"layer_scale1\.lambda1$", "ls1.gamma"), (r"layer_scale2\.lambda1$", "ls2.gamma"),
    (r"mlp\.fc1\.", "mlp.fc1."), (r"mlp\.fc2\.", "mlp.fc2."),
    (r"mlp\.weights_in\.", "mlp.fc1."), (r"mlp\.weights_out\.", "mlp.fc2."), (r"mlp\.down_proj\.", "mlp.fc2."),
]


def convert_hf(sd: StateDict) -> StateDict:
    """Hugging Face DINOv3ViT / Dinov2 / Dinov2WithRegisters state dict (published or transformers-5 names) -> RegViT.

    q/k/v projections are concatenated into ``qkv`` (a projection without bias, DINOv3's ``k_proj``, contributes
    zeros); SwiGLU ``gate_proj`` + ``up_proj`` -> packed ``fc1``; DINOv2's ``position_embeddings`` (1 + N) have their
    cls entry folded into ``cls_token``; DINOv3's ``mask_token`` [1, 1, D] becomes [1, D].
    """
    sd = _strip_base(dict(sd))
    out: StateDict = {}
    layers = sorted({int(m.group(1)) for k in sd for m in [re.match(_LAYER, k)] if m})
    for i in layers:
        prefix = next(p for p in (f"model.layer.{i}.", f"encoder.layer.{i}.", f"layer.{i}.")
                      if any(k.startswith(p) for k in sd))
        dst = f"blocks.{i}."
        for names in (("attention.q_proj", "attention.k_proj", "attention.v_proj"),
                      ("attention.attention.query", "attention.attention.key", "attention.attention.value")):
            _stack_qkv(sd, out, prefix, names, dst + "attn.qkv")
        _pack(sd, out, prefix + "mlp.gate_proj", prefix + "mlp.up_proj", dst + "mlp.fc1")
        if prefix + "mlp.up_proj.weight" in sd:  # plain MLP of DINOv3: up_proj is fc1
            for kind in ("weight", "bias"):
                if f"{prefix}mlp.up_proj.{kind}" in sd:
                    out[f"{dst}mlp.fc1.{kind}"] = sd.pop(f"{prefix}mlp.up_proj.{kind}")
        for k in [k for k in sd if k.startswith(prefix)]:
            rest = k[len(prefix):]
            for pat, rep in _BLOCK:
                if re.match(pat, rest):
                    out[dst + re.sub("^" + pat, rep, rest)] = sd.pop(k)
                    break
    for k in list(sd):
        if k in _EMBED:
            out[_EMBED[k]] = sd.pop(k)
    out.update(sd)  # whatever is left keeps its name and is reported if nothing consumes it
    if "mask_token" in out and out["mask_token"].ndim == 3:
        out["mask_token"] = out["mask_token"].reshape(1, -1)
    if "pos_embed" in out:
        out = fold_prefix_pos(out, 1)
    return out


def looks_like_hf(keys: Collection[str]) -> bool:
    keys = list(_strip_base(dict.fromkeys(keys)))  # type: ignore[arg-type]
    return (any_key(keys, r"^embeddings\.patch_embeddings\.") or any_key(keys, _LAYER + r"attention\.")
            or any_key(keys, r"^embeddings\.(cls_token|register_tokens)$"))


# ------------------------------------------------------------------------------------------ architecture
def _act(name: str) -> str:
    table = {"gelu": "gelu", "quick_gelu": "quick_gelu", "gelu_pytorch_tanh": "gelu_tanh", "gelu_new": "gelu_tanh"}
    if name not in table:
        raise CheckpointMismatch(f"config.json has hidden_act={name!r}, which RegViT does not implement: use a "
                                 f"checkpoint with one of {sorted(table)}")
    return table[name]


def _img_size(cfg: dict, key: str = "image_size") -> int:
    s = cfg.get(key, 224)
    return int(s[0] if isinstance(s, (list, tuple)) else s)


def regvit_kwargs_from_hf_config(cfg: dict) -> dict:
    """RegViT keyword arguments for the architecture a Hugging Face ``config.json`` describes."""
    mt = cfg.get("model_type")
    if mt not in HF_MODEL_TYPES:
        raise CheckpointMismatch(f"config.json has model_type={mt!r}: this loader knows {', '.join(HF_MODEL_TYPES)}")
    patch = cfg.get("patch_size", 16 if mt == "dinov3_vit" else 14)
    patch = int(patch[0] if isinstance(patch, (list, tuple)) else patch)
    kw = dict(embed_dim=cfg["hidden_size"], depth=cfg["num_hidden_layers"], num_heads=cfg["num_attention_heads"],
              patch_size=patch, img_size=_img_size(cfg), norm_eps=cfg.get("layer_norm_eps", 1e-6),
              init_values=cfg.get("layerscale_value", 1.0), mask_token=True)
    if mt == "dinov3_vit":
        gated = bool(cfg.get("use_gated_mlp", False))
        if not cfg.get("proj_bias", True) or not cfg.get("mlp_bias", True):
            raise CheckpointMismatch("config.json turns off proj_bias or mlp_bias, which RegViT does not support")
        if gated and cfg.get("hidden_act", "silu") != "silu":
            raise CheckpointMismatch(f"config.json has a gated MLP with hidden_act={cfg['hidden_act']!r}: RegViT's "
                                     "SwiGLU uses SiLU")
        kw.update(ffn_layer="swiglu" if gated else "mlp", mlp_hidden_dim=cfg.get("intermediate_size"),
                  act_layer="gelu" if gated else _act(cfg.get("hidden_act", "gelu")),
                  qkv_bias=bool(cfg.get("query_bias", True) or cfg.get("key_bias", False)
                                or cfg.get("value_bias", True)),
                  num_register_tokens=cfg.get("num_register_tokens", 0), use_pos_embed=False, rope=True,
                  rope_base=cfg.get("rope_theta", 100.0), rope_shift_coords=cfg.get("pos_embed_shift"),
                  rope_jitter_coords=cfg.get("pos_embed_jitter"), rope_rescale_coords=cfg.get("pos_embed_rescale"),
                  norm_eps=cfg.get("layer_norm_eps", 1e-5))
    else:
        reg = mt == "dinov2_with_registers"
        # grid of the stored position embedding; transformers resizes it bicubically by size, antialias only with
        # registers (Dinov2Model: antialias off; Dinov2WithRegistersModel: on), without DINOv2's +0.1 offset
        kw.update(ffn_layer="swiglu" if cfg.get("use_swiglu_ffn") else "mlp", mlp_ratio=cfg.get("mlp_ratio", 4),
                  act_layer=_act(cfg.get("hidden_act", "gelu")), qkv_bias=bool(cfg.get("qkv_bias", True)),
                  num_register_tokens=cfg.get("num_register_tokens", 4) if reg else 0,
                  mask_token=bool(cfg.get("use_mask_token", True)) or reg,
                  interpolate_antialias=reg, interpolate_offset=0.0)
    return kw


register_converter("hf", convert_hf, looks_like_hf,
                   "Hugging Face DINOv3ViTModel / Dinov2Model / Dinov2WithRegistersModel", priority=10)
