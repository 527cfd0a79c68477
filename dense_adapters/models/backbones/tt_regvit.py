"""RegViT with test-time registers (Jiang et al. 2025) as an mmseg backbone."""
from __future__ import annotations

from typing import Union

from ...analysis.test_time_registers import add_test_time_registers
from ...registry import MODELS
from .regvit import RegViT


@MODELS.register_module()
class TTRegViT(RegViT):
    """``dense_adapters.RegViT`` whose register neurons (a JSON from tools/analysis/find_register_neurons.py) write
    into ``num_test_time_registers`` extra untrained tokens at inference; state-dict keys are unchanged."""

    def __init__(self, register_neurons: Union[str, dict], num_test_time_registers: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        add_test_time_registers(self.vit, register_neurons, num_test_time_registers)
