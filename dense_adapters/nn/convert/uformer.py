"""Uformer checkpoints: the authors' release (ZhendongWang6/Uformer ``model.py``) and this package's own layout.

The authors' names, as their ``Uformer`` class builds them (``token_projection='linear'``, ``token_mlp='leff'``, the
released T/S/B SIDD and GoPro models; files are ``{'state_dict': ...}``, with a ``module.`` prefix when saved from
``DataParallel``), and ours:

====================================================  ===================================================
authors                                               ours (:class:`dense_adapters.nn.uformer.Uformer`)
====================================================  ===================================================
``input_proj.proj.0.*``                               ``input_proj.0.*``
``encoderlayer_<l>.blocks.<i>.``                      ``encoders.<l>.blocks.<i>.``
``dowsample_<l>.conv.0.*`` (their spelling)           ``downs.<l>.*``
``conv.blocks.<i>.`` (the bottleneck)                 ``bottleneck.blocks.<i>.``
``upsample_<k>.deconv.0.*``                           ``ups.<k>.*``
``decoderlayer_<k>.blocks.<i>.``                      ``decoders.<k>.blocks.<i>.``
``output_proj.proj.0.*``                              ``output_proj.*``
``attn.qkv.to_q.*`` + ``attn.qkv.to_kv.*``            ``attn.qkv.*`` (rows: q, then k, v)
``mlp.linear1.0`` / ``mlp.dwconv.0`` / ``mlp.linear2.0``  ``mlp.fc1`` / ``mlp.dwconv`` / ``mlp.fc2``
``attn.relative_position_index`` (a stored buffer)    recomputed: checked equal to ours, then dropped
====================================================  ===================================================

Norms, ``attn.proj``, ``attn.relative_position_bias_table`` and the decoders' ``modulator`` keep their names. One
behavioural difference is not in the weights: the authors decide when a model is built whether a stage shifts its
windows (from ``img_size``, the training patch size); ``Uformer(shift_from_size=...)`` reproduces that.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from typing import Mapping, Optional

import torch
from torch import Tensor

from ...errors import CheckpointMismatch
from ..window_attention import relative_position_index
from .common import StateDict, any_key, register_converter, rename

_RENAMES = [  # authors -> ours, applied in order to every key
    (r"^input_proj\.proj\.0\.", "input_proj.0."),
    (r"^output_proj\.proj\.0\.", "output_proj."),
    (r"^encoderlayer_(\d+)\.", r"encoders.\1."),
    (r"^decoderlayer_(\d+)\.", r"decoders.\1."),
    (r"^conv\.blocks\.", "bottleneck.blocks."),
    (r"^dowsample_(\d+)\.conv\.0\.", r"downs.\1."),
    (r"^upsample_(\d+)\.deconv\.0\.", r"ups.\1."),
    (r"\.mlp\.linear1\.0\.", ".mlp.fc1."),
    (r"\.mlp\.dwconv\.0\.", ".mlp.dwconv."),
    (r"\.mlp\.linear2\.0\.", ".mlp.fc2."),
]
_INVERSE = [  # ours -> authors
    (r"^input_proj\.0\.", "input_proj.proj.0."),
    (r"^output_proj\.", "output_proj.proj.0."),
    (r"^encoders\.(\d+)\.", r"encoderlayer_\1."),
    (r"^decoders\.(\d+)\.", r"decoderlayer_\1."),
    (r"^bottleneck\.blocks\.", "conv.blocks."),
    (r"^downs\.(\d+)\.", r"dowsample_\1.conv.0."),
    (r"^ups\.(\d+)\.", r"upsample_\1.deconv.0."),
    (r"\.mlp\.fc1\.", ".mlp.linear1.0."),
    (r"\.mlp\.dwconv\.", ".mlp.dwconv.0."),
    (r"\.mlp\.fc2\.", ".mlp.linear2.0."),
]
INDEX_SUFFIX = "attn.relative_position_index"


def window_of_table(rows: int) -> Optional[int]:
    """The window side w of a square relative-position-bias table of ``rows`` = (2w - 1)**2 rows (None if none)."""
    side = math.isqrt(rows)
    return (side + 1) // 2 if side * side == rows and side % 2 == 1 else None


def _check_index(key: str, index: Tensor, table: Optional[Tensor]) -> None:
    """Refuse a stored relative position index that is not the one this package computes for the table's window."""
    w = window_of_table(table.shape[0]) if table is not None else None
    if w is None:
        raise CheckpointMismatch(f"{key}: a stored relative position index without a square bias table beside it: "
                                 "not a Uformer window attention this package can rebuild")
    ours = relative_position_index(w)
    if tuple(index.shape) != tuple(ours.shape) or not torch.equal(index.long().cpu(), ours):
        raise CheckpointMismatch(f"{key} differs from the relative position index of a {w}x{w} window (Swin/Uformer's "
                                 "row-major offsets): the checkpoint comes from another window layout")


def convert_uformer(sd: StateDict) -> StateDict:
    """The authors' Uformer state dict -> :class:`~dense_adapters.nn.uformer.Uformer` names (see the module doc).

    Fuses ``to_q``/``to_kv`` into ``qkv``, checks every stored ``relative_position_index`` against ours (one line if
    one differs) and keeps it under its converted name for the loader to drop (``common.DROPPABLE``). Unknown keys
    keep their names, so the loader reports them.
    """
    out = rename(sd, _RENAMES)
    for wk in [k for k in out if k.endswith(".attn.qkv.to_q.weight")]:
        p = wk[: -len("to_q.weight")]
        for kind in ("weight", "bias"):
            q, kv = p + f"to_q.{kind}", p + f"to_kv.{kind}"
            if q in out and kv in out:
                out[p + kind] = torch.cat([out.pop(q), out.pop(kv)], dim=0)
    for k in [k for k in out if k.endswith(INDEX_SUFFIX)]:
        _check_index(k, out[k], out.get(k[: -len("relative_position_index")] + "relative_position_bias_table"))
    return out


def uformer_to_authors(sd: StateDict, with_index: bool = True) -> StateDict:
    """The inverse of :func:`convert_uformer`: our Uformer names -> the authors' (``qkv`` split into ``to_q`` /
    ``to_kv``; with ``with_index`` the ``relative_position_index`` buffers their model stores are added)."""
    out: StateDict = {}
    for name, v in rename(sd, _INVERSE).items():
        if name.endswith(".attn.qkv.weight") or name.endswith(".attn.qkv.bias"):
            kind = name.rsplit(".", 1)[1]
            p = name[: -len(f"qkv.{kind}")]
            dim = v.shape[0] // 3
            out[p + f"qkv.to_q.{kind}"], out[p + f"qkv.to_kv.{kind}"] = v[:dim], v[dim:]
            continue
        out[name] = v
        if with_index and name.endswith(".attn.relative_position_bias_table"):
            w = window_of_table(v.shape[0])
            out[name[: -len("relative_position_bias_table")] + "relative_position_index"] = relative_position_index(w)
    return out


def convert_uformer_native(sd: StateDict) -> StateDict:
    """This package's Uformer layout (a converted file, a Restorer's ``generator.net.`` weights): unchanged."""
    return dict(sd)


def looks_like_uformer(keys: Mapping[str, Tensor]) -> bool:
    return "input_proj.proj.0.weight" in keys and any_key(keys, r"^encoderlayer_\d+\.blocks\.\d+\.")


def looks_like_uformer_native(keys: Mapping[str, Tensor]) -> bool:
    return "input_proj.0.weight" in keys and any_key(keys, r"^encoders\.\d+\.blocks\.\d+\.")


def uformer_kwargs_from_state_dict(sd: StateDict) -> dict:
    """Constructor arguments of the :class:`~dense_adapters.nn.uformer.Uformer` a state dict in our names holds:
    ``embed_dim``, ``depths``, ``num_heads``, ``win_size``, ``mlp_ratio``, ``modulator``, ``skip_mode``,
    ``in_chans`` (as read from the shapes; one line if the state dict is not a Uformer's)."""
    if "input_proj.0.weight" not in sd:
        raise CheckpointMismatch("not a Uformer state dict (no input_proj.0.weight): convert it first (--from uformer)")
    embed_dim, in_chans = sd["input_proj.0.weight"].shape[:2]
    stage_of = re.compile(r"^(encoders\.\d+|bottleneck|decoders\.\d+)\.blocks\.(\d+)\.")
    blocks: Counter = Counter()
    for k in sd:
        m = stage_of.match(k)
        if m:
            blocks[m.group(1)] = max(blocks[m.group(1)], int(m.group(2)) + 1)
    L = sum(1 for s in blocks if s.startswith("encoders."))
    stages = [f"encoders.{l}" for l in range(L)] + ["bottleneck"] + [f"decoders.{k}" for k in range(L)]
    if L == 0 or any(s not in blocks for s in stages):
        raise CheckpointMismatch(f"the Uformer state dict lacks stages (found {sorted(blocks)}): the file is incomplete")
    heads, win = [], None
    for s in stages:
        table = next((sd[f"{s}.blocks.{i}.attn.relative_position_bias_table"] for i in range(blocks[s])
                      if f"{s}.blocks.{i}.attn.relative_position_bias_table" in sd), None)
        if table is None:  # a SkipAt decoder stage: no attention; Uformer's default head count
            heads.append(2 ** (L - int(s.split(".")[1])) if s.startswith("decoders.") else 1)
            continue
        heads.append(int(table.shape[1]))
        win = win or window_of_table(table.shape[0])
    skip = None
    if any_key(sd, r"^decoders\.\d+\.blocks\.\d+\.skip_fn\.fc1\."):
        skip = "parametric"
    elif not any_key(sd, r"^decoders\.\d+\.blocks\.\d+\.attn\."):
        skip = "identity"
    hidden = sd["encoders.0.blocks.0.mlp.fc1.weight"].shape[0] if "encoders.0.blocks.0.mlp.fc1.weight" in sd else None
    return dict(embed_dim=int(embed_dim), depths=tuple(blocks[s] for s in stages), num_heads=tuple(heads),
                win_size=int(win or 8), mlp_ratio=(hidden / embed_dim) if hidden else 4.0,
                modulator=any_key(sd, r"^decoders\.\d+\.blocks\.\d+\.modulator\.weight$"), skip_mode=skip,
                in_chans=int(in_chans))


register_converter("uformer", convert_uformer, looks_like_uformer,
                   "Uformer authors' release (ZhendongWang6/Uformer: input_proj.proj.0, encoderlayer_l, to_q/to_kv)",
                   priority=20, model_family="uformer")
register_converter("uformer-native", convert_uformer_native, looks_like_uformer_native,
                   "dense-adapters Uformer (input_proj.0, encoders.l, a Restorer's generator.net.)", priority=21,
                   model_family="uformer")
