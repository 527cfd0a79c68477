"""bf16 autocast training on any device (mmengine's AmpOptimWrapper refuses the CPU)."""
from __future__ import annotations

from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper

from ..registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """An ``OptimWrapper`` whose forward (``optim_context``) runs under ``torch.autocast(device_type, bfloat16)``.

    Backward and the optimizer step stay outside autocast and in fp32 parameters; bf16 needs no loss scaling.
    """

    def __init__(self, device_type: str = "cpu", **kwargs) -> None:
        super().__init__(**kwargs)
        self.device_type = device_type

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        with super().optim_context(model), torch.autocast(self.device_type, dtype=torch.bfloat16):
            yield
