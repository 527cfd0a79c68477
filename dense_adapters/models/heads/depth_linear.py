"""DINOv2-style linear depth head ("lin. 1" / "lin. 4"): classification into depth bins over frozen features."""
from __future__ import annotations

from typing import Sequence, Union

import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from torch import Tensor, nn

from ...errors import UserError
from ...registry import MODELS
from .depth_base import BaseDepthHead, bin_centres, expected_depth, normalize_bins


@MODELS.register_module()
class DepthLinearHead(BaseDepthHead):
    """Linear depth probe of DINOv2 and the Registers paper (``type='dense_adapters.DepthLinearHead'``).

    Per selected level, the patch map [B, C, h, w] is concatenated with its cls token broadcast over the grid
    (backbone ``output_cls_token=True``); every level is resized bilinearly to ``upsample`` times the first
    level's grid and concatenated; a 1x1 conv classifies each position into ``n_bins`` depth bins; the
    probabilities (``norm_strategy``) weight the bin centres (``bins_strategy``) into a depth
    [B, 1, upsample * h, upsample * w]. One level is "lin. 1", four levels (e.g. ViT-S blocks 3, 6, 9, 12,
    ``out_indices=(2, 5, 8, 11)``) are "lin. 4".

    Args:
        in_channels: patch channels of each selected level.
        in_index: which backbone outputs to use.
        use_cls_token: concatenate the cls token to every patch feature (DINOv2: yes).
        upsample: bilinear upsampling of the features before the classifier (DINOv2: 4).
        n_bins, bins_strategy, norm_strategy: 256, ``'UD'`` and ``'linear'`` as DINOv2.
        use_bn: BatchNorm before the classifier (DINOv2's depth ``BNHead`` has it commented out: off).
    """

    def __init__(
        self,
        in_channels: Union[int, Sequence[int]],
        in_index: Union[int, Sequence[int]] = -1,
        use_cls_token: bool = True,
        upsample: int = 4,
        n_bins: int = 256,
        bins_strategy: str = "UD",
        norm_strategy: str = "linear",
        use_bn: bool = False,
        min_depth: float = 1e-3,
        max_depth: float = 10.0,
        init_cfg: Union[dict, None] = dict(type="Normal", std=0.01, override=dict(name="conv_depth")),
        **kwargs,
    ) -> None:
        in_channels = [in_channels] if isinstance(in_channels, int) else list(in_channels)
        in_index = [in_index] if isinstance(in_index, int) else list(in_index)
        if len(in_channels) != len(in_index):
            raise UserError(f"in_channels {in_channels} and in_index {in_index} must have the same length")
        if upsample < 1:
            raise UserError(f"upsample must be >= 1, got {upsample}")
        normalize_bins(torch.zeros(1, 2, 1, 1), norm_strategy)  # validates the name early
        channels = sum(in_channels) * (2 if use_cls_token else 1)  # derived: a given 'channels' is ignored
        kwargs.pop("channels", None)
        kwargs.pop("input_transform", None)
        super().__init__(in_channels, channels, min_depth=min_depth, max_depth=max_depth, in_index=in_index,
                         input_transform="multiple_select", init_cfg=init_cfg, **kwargs)
        self.use_cls_token, self.upsample = use_cls_token, upsample
        self.n_bins, self.bins_strategy, self.norm_strategy = n_bins, bins_strategy, norm_strategy
        self.register_buffer("bins", bin_centres(min_depth, max_depth, n_bins, bins_strategy), persistent=False)
        self.bn = build_norm_layer(self.norm_cfg or dict(type="BN"), channels)[1] if use_bn else nn.Identity()
        self.conv_depth = nn.Conv2d(channels, n_bins, kernel_size=1)

    def _features(self, inputs: Sequence) -> Tensor:
        """Selected levels -> [B, channels, upsample * h0, upsample * w0] (h0, w0: the first level's grid)."""
        feats = []
        for x in self._transform_inputs(inputs):
            if isinstance(x, (list, tuple)):
                patch, cls = x  # [B, C, h, w], [B, C]
                if self.use_cls_token:
                    patch = torch.cat([patch, cls[:, :, None, None].expand_as(patch)], dim=1)
                x = patch
            elif self.use_cls_token:
                raise UserError("DepthLinearHead(use_cls_token=True) needs a backbone with output_cls_token=True")
            feats.append(x)
        h, w = feats[0].shape[2:]
        size = (h * self.upsample, w * self.upsample)
        feats = [f if f.shape[2:] == size else F.interpolate(f, size, mode="bilinear", align_corners=self.align_corners)
                 for f in feats]
        x = torch.cat(feats, dim=1)
        if x.shape[1] != self.channels:
            raise UserError(f"DepthLinearHead got {x.shape[1]} feature channels, expected {self.channels}: check "
                            "in_channels against the backbone width and use_cls_token")
        return x

    def bin_logits(self, inputs: Sequence) -> Tensor:
        """Backbone outputs -> bin logits [B, n_bins, upsample * h, upsample * w]."""
        x = self.bn(self._features(inputs))
        if self.dropout is not None:
            x = self.dropout(x)
        return self.conv_depth(x)

    def forward(self, inputs: Sequence) -> Tensor:
        """Backbone outputs -> depth [B, 1, upsample * h, upsample * w] in metres, inside [min_depth, max_depth]."""
        probs = normalize_bins(self.bin_logits(inputs), self.norm_strategy)
        return expected_depth(probs, self.bins)
