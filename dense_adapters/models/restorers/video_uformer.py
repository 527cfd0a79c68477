"""The plain-PyTorch VideoUformer registered as a clip generator for :class:`dense_adapters.Restorer`."""
from __future__ import annotations

from typing import Optional

from mmengine.model import BaseModule
from torch import Tensor

from ...errors import UserError
from ...nn.video_uformer import VIDEO_UFORMER_PRESETS, create_video_uformer, restore_in_windows, window_starts
from ...nn.video_uformer import VideoUformer as CoreVideoUformer
from ...registry import MODELS


@MODELS.register_module()
class VideoUformer(BaseModule):
    """``type='dense_adapters.VideoUformer'``: ``preset`` ``'S'``/``'B'`` (or none) plus any keyword of the core
    :class:`dense_adapters.nn.video_uformer.VideoUformer` (``skip_mode='identity'|'parametric'`` for SkipAt).

    In eval mode, a sequence longer than ``clip_len`` frames is restored in overlapping temporal windows
    (``clip_overlap`` frames in common, predictions averaged), and with ``tile`` in overlapping spatial tiles:
    whole-sequence evaluation with the clip length the model was trained on.
    """

    def __init__(self, preset: Optional[str] = None, clip_len: int = 7, clip_overlap: int = 2, tile: int = 0,
                 tile_overlap: int = 32, init_cfg: Optional[dict] = None, **kwargs) -> None:
        super().__init__(init_cfg=init_cfg)
        if preset is not None and preset not in VIDEO_UFORMER_PRESETS:
            raise UserError(f"unknown VideoUformer preset {preset!r}: use one of {sorted(VIDEO_UFORMER_PRESETS)}")
        window_starts(clip_len + 1, clip_len, clip_overlap)  # validates the overlap
        if tile:
            window_starts(tile + 1, tile, tile_overlap)
        self.net = create_video_uformer(preset, **kwargs) if preset else CoreVideoUformer(**kwargs)
        self.clip_len, self.clip_overlap, self.tile, self.tile_overlap = clip_len, clip_overlap, tile, tile_overlap

    def init_weights(self) -> None:
        if self.init_cfg:  # e.g. Pretrained; the core initialises itself on construction
            super().init_weights()

    def forward(self, x: Tensor) -> Tensor:
        """[B, T, 3, H, W] in [0, 1] -> restored [B, T, 3, H, W]."""
        if x.ndim != 5:
            raise UserError(f"VideoUformer expects clips [B, T, C, H, W], got shape {tuple(x.shape)}")
        T, H, W = x.shape[1], x.shape[-2], x.shape[-1]
        fits = T <= self.clip_len and (not self.tile or max(H, W) <= self.tile)
        if self.training or fits:
            return self.net(x)
        return restore_in_windows(self.net, x, self.clip_len, self.clip_overlap, self.tile, self.tile_overlap)
