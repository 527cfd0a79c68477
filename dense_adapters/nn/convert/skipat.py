"""SkipAt's released ViTs (Qualcomm-AI-research/skip-attention ``model/vit_skipat.py``, on timm 0.5.4).

Their model is timm 0.5.4's ``VisionTransformer`` (``patch_embed.proj``, ``cls_token``, ``pos_embed`` with the cls
entry, ``blocks.<i>.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}``, ``norm``, ``head``) plus six Phi
modules ``param_1`` .. ``param_6``: ``param_<j>`` is the Phi of the j-th skipped block, in block order (their
default ``skip_indices=(3, 4, 5, 6, 7, 8)``, 0-based), each ``linear1.0`` (Linear d -> 2d), ``dwconv.0``
(depthwise 5x5), ``linear2.0`` (Linear 2d -> d), ``eca.conv`` (ECA's 1-D conv, no bias). The skipped blocks keep
their (unused) ``attn``/``norm1`` weights, which the loader drops as attention of SkipAt blocks. Files are
``{'model': ...}`` or ``{'state_dict_ema': ...}`` / ``{'state_dict': ...}`` (looked up in that order, as their
``load_checkpoint``), often named ``.t7`` (torch.save files like any other: read with ``weights_only``), keys
possibly prefixed ``module.``.

Chaining. For a skipped block after a gap (e.g. skips 3, 4, 7, 8: block 7) their code feeds Phi the previous
Phi's output (block 4's), with the cls token of the latest computed attention; RegViT's default
(``skip_chain='previous'``, the paper's wording) feeds it the preceding block's attention output (block 6's). Both
agree for contiguous skips, which is what the released models use. A checkpoint loaded into a model whose skips
have gaps needs ``skip_chain='phi'`` (refused otherwise).
"""
from __future__ import annotations

import re
from typing import Mapping, Sequence

from torch import Tensor

from ...errors import CheckpointMismatch
from .common import StateDict, any_key, register_converter
from .timm import convert_timm

AUTHORS_SKIP_LAYERS = (3, 4, 5, 6, 7, 8)  # vit_skipat.py's default skip_indices (0-based blocks)
CONTAINERS = ("model", "state_dict_ema", "state_dict")  # the order of their utils.load_checkpoint
_PHI = re.compile(r"^param_(\d+)\.(linear1\.0|dwconv\.0|linear2\.0|eca\.conv)\.(weight|bias)$")
_PHI_NAMES = {"linear1.0": "fc1", "dwconv.0": "dwconv", "linear2.0": "fc2", "eca.conv": "eca.conv"}
_PHI_INVERSE = {v: k for k, v in _PHI_NAMES.items()}


def has_gaps(skip_layers: Sequence[int]) -> bool:
    layers = sorted(skip_layers)
    return any(b - a > 1 for a, b in zip(layers, layers[1:]))


def convert_skipat(sd: StateDict, skip_layers: Sequence[int] = AUTHORS_SKIP_LAYERS,
                   skip_chain: str = "phi") -> StateDict:
    """SkipAt's state dict -> RegViT names: the ViT part as timm's (cls position folded into ``cls_token``), Phi j
    -> ``blocks.<skip_layers[j-1]>.skip_fn.{fc1, dwconv, fc2, eca.conv}`` (``skip_layers`` sorted: the model's, or
    SkipAt's default 3..8). Phi modules beyond ``len(skip_layers)`` keep their names (the loader reports them)."""
    layers = sorted(int(i) for i in skip_layers)
    phis = sorted({int(m.group(1)) for m in map(_PHI.match, sd) if m})
    if phis and phis != list(range(1, len(phis) + 1)):
        raise CheckpointMismatch(f"the SkipAt Phi modules are numbered {phis}: expected param_1..param_{len(phis)}")
    if phis and layers and has_gaps(layers) and skip_chain != "phi":
        raise CheckpointMismatch(f"SkipAt's code chains Phi over the gaps of skip_layers={layers} (a Phi after a gap "
                                 "reads the previous Phi's output): build the model with skip_chain='phi'")
    out = convert_timm({k: v for k, v in sd.items() if not _PHI.match(k)})
    for k, v in sd.items():
        m = _PHI.match(k)
        if not m:
            continue
        j = int(m.group(1))
        out[f"blocks.{layers[j - 1]}.skip_fn.{_PHI_NAMES[m.group(2)]}.{m.group(3)}" if j <= len(layers) else k] = v
    return out


def regvit_to_skipat(sd: StateDict, skip_layers: Sequence[int]) -> StateDict:
    """The inverse of :func:`convert_skipat` for a RegViT state dict without registers: Phi of the j-th skipped
    block -> ``param_<j>``, the cls position entry stored in ``pos_embed`` (zero: RegViT folds it into the token)."""
    import torch

    layers = sorted(int(i) for i in skip_layers)
    out: StateDict = {}
    for k, v in sd.items():
        m = re.match(r"^blocks\.(\d+)\.skip_fn\.(fc1|dwconv|fc2|eca\.conv)\.(weight|bias)$", k)
        if m:
            out[f"param_{layers.index(int(m.group(1))) + 1}.{_PHI_INVERSE[m.group(2)]}.{m.group(3)}"] = v
        elif k == "pos_embed":
            out[k] = torch.cat([torch.zeros_like(v[:, :1]), v], dim=1)
        else:
            out[k] = v
    return out


def looks_like_skipat(keys: Mapping[str, Tensor]) -> bool:
    return "patch_embed.proj.weight" in keys and any_key(keys, r"^param_\d+\.linear1\.0\.weight$")


def _model_kwargs(model) -> dict:
    return dict(skip_layers=tuple(getattr(model, "skip_layers", ())),
                skip_chain=getattr(model, "skip_chain", "previous"))


register_converter("skipat", convert_skipat, looks_like_skipat,
                   "SkipAt release (skip-attention vit_skipat.py on timm 0.5.4: param_<j> Phi, .t7 files)",
                   priority=40, model_kwargs=_model_kwargs, containers=CONTAINERS)
