"""DINOv2-style linear probe head for segmentation: BatchNorm + 1x1 conv over (patch | cls) features."""
from __future__ import annotations

from typing import Sequence, Union

import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from torch import Tensor

from ...registry import MODELS


@MODELS.register_module()
class LinearProbeHead(BaseDecodeHead):
    """Linear classifier over frozen ViT features, as in DINOv2's and the Registers paper's linear evaluation.

    Each selected level ``[B, C, h, w]`` (or ``[map, cls]`` from a backbone with ``output_cls_token``) is,
    if ``use_cls_token``, concatenated with its cls token broadcast over the grid; levels are resized to the
    first one's grid and concatenated; then ``upsample`` (bilinear), BatchNorm, dropout and a 1x1 conv.

    Args:
        in_channels: channels of each selected level (patch channels; the cls token adds as many again).
        in_index: which backbone outputs to use.
        use_cls_token: concatenate the cls token to every patch feature.
        upsample: bilinear upsampling factor of the features before the classifier (DINOv2 uses 4).
    """

    def __init__(
        self,
        in_channels: Union[int, Sequence[int]],
        in_index: Union[int, Sequence[int]] = -1,
        use_cls_token: bool = True,
        upsample: int = 1,
        **kwargs,
    ) -> None:
        in_channels = [in_channels] if isinstance(in_channels, int) else list(in_channels)
        in_index = [in_index] if isinstance(in_index, int) else list(in_index)
        if len(in_channels) != len(in_index):
            raise ValueError(f"in_channels {in_channels} and in_index {in_index} must have the same length")
        channels = sum(in_channels) * (2 if use_cls_token else 1)  # derived: a given 'channels' is ignored
        kwargs.pop("channels", None)
        kwargs.setdefault("norm_cfg", dict(type="BN", requires_grad=True))
        super().__init__(in_channels, channels, in_index=in_index, input_transform="multiple_select", **kwargs)
        self.use_cls_token = use_cls_token
        self.upsample = upsample
        _, self.bn = build_norm_layer(self.norm_cfg, self.channels)

    def _features(self, inputs: Sequence) -> Tensor:
        feats = []
        for i in self.in_index:
            x = inputs[i]
            if isinstance(x, (list, tuple)):
                patch, cls = x
                if self.use_cls_token:
                    patch = torch.cat([patch, cls[:, :, None, None].expand_as(patch)], dim=1)
                x = patch
            elif self.use_cls_token:
                raise ValueError("LinearProbeHead(use_cls_token=True) needs a backbone with output_cls_token=True")
            feats.append(x)
        size = feats[0].shape[2:]
        feats = [f if f.shape[2:] == size else F.interpolate(f, size, mode="bilinear", align_corners=False)
                 for f in feats]
        x = torch.cat(feats, dim=1)  # [B, channels, h, w]
        if self.upsample > 1:
            x = F.interpolate(x, scale_factor=self.upsample, mode="bilinear", align_corners=False)
        return x

    def forward(self, inputs: Sequence) -> Tensor:
        """Backbone outputs -> logits [B, num_classes, h * upsample, w * upsample]."""
        return self.cls_seg(self.bn(self._features(inputs)))
