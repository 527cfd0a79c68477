"""RegViT with test-time registers (Jiang et al. 2025) as an mmseg backbone."""
from __future__ import annotations

from typing import Optional, Union

from ...analysis.test_time_registers import add_test_time_registers
from ...registry import MODELS
from .regvit import RegViT


@MODELS.register_module()
class TTRegViT(RegViT):
    """``dense_adapters.RegViT`` whose register neurons write into ``num_test_time_registers`` extra untrained tokens
    at inference; state-dict keys are unchanged.

    ``register_neurons``: a released list by name (``'dinov2_vitl14'``: the authors' 45 neurons for DINOv2
    ViT-L/14), a JSON from tools/analysis/find_register_neurons.py, or ``{layer: [neurons]}``. ``method``:
    ``'jiang2025'`` (default) or ``'per_neuron'``; None takes the one the JSON names. ``init``: ``'zero'`` or
    ``'mean'``.
    """

    def __init__(self, register_neurons: Union[str, dict], num_test_time_registers: int = 1,
                 method: Optional[str] = None, init: str = "zero", **kwargs) -> None:
        super().__init__(**kwargs)
        add_test_time_registers(self.vit, register_neurons, num_test_time_registers, init=init, method=method)
