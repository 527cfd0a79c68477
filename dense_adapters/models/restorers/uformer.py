"""The plain-PyTorch Uformer registered as a generator for :class:`dense_adapters.Restorer`."""
from __future__ import annotations

from typing import Optional

from mmengine.model import BaseModule
from torch import Tensor

from ...nn.uformer import UFORMER_PRESETS
from ...nn.uformer import Uformer as CoreUformer
from ...errors import UserError
from ...registry import MODELS


@MODELS.register_module()
class Uformer(BaseModule):
    """``type='dense_adapters.Uformer'``: ``preset`` ``'T'``/``'S'``/``'B'`` (or none) plus any keyword of the
    core :class:`dense_adapters.nn.uformer.Uformer` (``skip_mode='parametric'`` for SkipAt)."""

    def __init__(self, preset: Optional[str] = None, init_cfg: Optional[dict] = None, **kwargs) -> None:
        super().__init__(init_cfg=init_cfg)
        if preset is not None and preset not in UFORMER_PRESETS:
            raise UserError(f"unknown Uformer preset {preset!r}: use one of {sorted(UFORMER_PRESETS)}")
        self.net = CoreUformer(**{**(UFORMER_PRESETS[preset] if preset else {}), **kwargs})

    def init_weights(self) -> None:
        if self.init_cfg:  # e.g. Pretrained; the core initialises itself on construction
            super().init_weights()

    def forward(self, x: Tensor) -> Tensor:
        """[B, 3, H, W] in [0, 1] -> restored [B, 3, H, W]."""
        return self.net(x)
