"""Refuse a checkpoint that does not fit the model, instead of mmengine's warning and silent partial load."""
from __future__ import annotations

import re
from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from ..errors import CheckpointMismatch, UserError
from ..registry import HOOKS

# segmentors (decode/auxiliary heads) and classifiers (ImageClassifier.head, LinearProbeClassifier.heads)
HEAD_PREFIXES = ("decode_head.", "auxiliary_head.", "head.", "heads.")


def _short(keys: list[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


def check_fits(state_dict: dict, own: dict, name: str = "the checkpoint", mode: str = "strict") -> list[str]:
    """Raise :class:`CheckpointMismatch` when ``state_dict`` cannot be loaded into a model with ``own`` state.

    ``mode='strict'`` (test, resume): any shape mismatch, missing or unexpected key is an error.
    ``mode='finetune'`` (``load_from``): heads (decode_head/auxiliary_head, a classifier's head/heads) may differ, e.g. another class count;
    the rest must match, and at least one tensor must load. Returns the head keys that will be skipped.
    """
    sd = {re.sub(r"^module\.", "", k): v for k, v in state_dict.items()}
    reg_ckpt = [k for k in sd if k.endswith("reg_token")]
    reg_own = [k for k in own if k.endswith("reg_token")]
    key = (reg_ckpt or reg_own or [None])[0]
    if key is not None:
        n_ckpt = int(sd[key].shape[1]) if key in sd else 0
        n_own = int(own[key].shape[1]) if key in own else 0
        if n_ckpt != n_own:
            hint = key.rsplit(".vit.", 1)[0].rsplit(".reg_token", 1)[0]
            raise CheckpointMismatch(
                f"{name} has {n_ckpt} register tokens ({key}) but the model has {n_own}: set "
                f"model.{hint}.num_register_tokens={n_ckpt} (or use the config the checkpoint was trained with)")
    heads_ok = mode == "finetune"
    bad = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}" for k, v in sd.items()
           if k in own and hasattr(v, "shape") and tuple(v.shape) != tuple(own[k].shape)
           and not (heads_ok and k.startswith(HEAD_PREFIXES))]
    if bad:
        raise CheckpointMismatch(
            f"{name} does not fit this model ({len(bad)} shape mismatches): {bad[0]}: it was trained with another "
            "architecture; use the config it was trained with, or check arch/patch_size/embed_dim/num_classes")
    skipped = [k for k, v in sd.items() if k in own and hasattr(v, "shape") and tuple(v.shape) != tuple(own[k].shape)]
    if mode == "strict":
        missing = [k for k in own if k not in sd]
        unexpected = [k for k in sd if k not in own]
        if missing or unexpected:
            parts = ([f"lacks {len(missing)} of the model's tensors ({_short(missing)})"] if missing else []) + \
                    ([f"has {len(unexpected)} the model lacks ({_short(unexpected)})"] if unexpected else [])
            raise CheckpointMismatch(f"{name} {' and '.join(parts)}: it belongs to another model; use the config it "
                                     "was trained with")
    elif not any(k in own for k in sd):
        raise CheckpointMismatch(
            f"no tensor of {name} matches the model's names (e.g. {_short(list(sd), 2)}): for backbone weights use "
            "model.backbone.init_cfg=dict(type='Pretrained', checkpoint=PATH) instead of load_from")
    return skipped


@HOOKS.register_module()
class CheckpointFitHook(Hook):
    """Checks every checkpoint the runner loads (``load_from``, resume, test) against the model.

    Args:
        mode: ``'strict'`` or ``'finetune'`` (see :func:`check_fits`). tools/train.py uses ``'strict'`` to resume and
            ``'finetune'`` for ``load_from``; tools/test.py uses ``'strict'``.
    """

    priority = "VERY_HIGH"

    def __init__(self, mode: str = "strict") -> None:
        if mode not in ("strict", "finetune"):
            raise UserError(f"CheckpointFitHook mode must be 'strict' or 'finetune', got {mode!r}")
        self.mode = mode

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        sd: Optional[dict] = checkpoint.get("state_dict", checkpoint)
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        name = getattr(runner, "_load_from", None) or "the checkpoint"
        check_fits(sd, model.state_dict(), str(name), self.mode)
