"""FSDP wrapping and activation checkpointing of RegViT blocks, by name for mmengine's FSDPStrategy configs.

    strategy = dict(type='FSDPStrategy',
                    model_wrapper=dict(auto_wrap_policy=dict(type='dense_adapters.regvit_block_wrap_policy'),
                                       use_orig_params=True),
                    activation_checkpointing=dict(check_fn='dense_adapters.regvit_block_check_fn'))

Each transformer block becomes one FSDP unit (its parameters are gathered just for its forward/backward) and is
recomputed in the backward pass instead of keeping its activations (configs/ade20k_regvit_large_fsdp.py).
"""
from __future__ import annotations

from torch import nn

from ..nn.block import Block
from ..registry import FUNCTIONS


@FUNCTIONS.register_module()
def regvit_block_wrap_policy(module: nn.Module, recurse: bool, nonwrapped_numel: int) -> bool:
    """torch FSDP auto-wrap policy: one FSDP unit per RegViT :class:`Block` (recurse through everything else)."""
    return True if recurse else isinstance(module, Block)


@FUNCTIONS.register_module()
def regvit_block_check_fn(module: nn.Module) -> bool:
    """Activation-checkpointing selector: recompute RegViT blocks in the backward pass."""
    return isinstance(module, Block)
