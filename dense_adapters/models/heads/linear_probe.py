"""Linear probe head for segmentation: BatchNorm + 1x1 conv over frozen ViT features (DINOv2's and DINOv3's)."""
from __future__ import annotations

from typing import Sequence, Union

import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from torch import Tensor

from ...errors import UserError
from ...registry import MODELS


@MODELS.register_module()
class LinearProbeHead(BaseDecodeHead):
    """Linear classifier over frozen ViT features (``type='dense_adapters.LinearProbeHead'``).

    The selected levels ``[B, C, h, w]`` are resized (bilinear) to the first one's grid and concatenated, then
    BatchNorm and a 1x1 conv give logits at the patch grid, which mmseg resizes to the image. With the defaults
    this is the official probes' head:

    * DINOv2 ``BNHead`` (``eval/segmentation/models/decode_heads/linear_head.py``): patch tokens only, BN, 1x1
      conv (dropout 0); "lin." reads the last block, "+ms" the last four blocks concatenated.
    * DINOv3 ``LinearHead`` (``eval/segmentation/models/heads/linear_head.py``): the same with ``Dropout2d(0.1)``
      applied *before* the BN: ``dropout_ratio=0.1, dropout_first=True``.

    Options (not the published probes): ``use_cls_token`` concatenates each level's cls token to every patch
    feature (the backbone needs ``output_cls_token=True``; channels double), and ``upsample`` resizes the features
    bilinearly by that factor before the BN (the depth probes' x4; it costs ``upsample**2`` times the head compute).

    Args:
        in_channels: channels of each selected level (patch channels; the cls token adds as many again).
        in_index: which backbone outputs to use.
        use_cls_token: concatenate the cls token to every patch feature.
        upsample: bilinear upsampling factor of the features before the BN.
        dropout_first: dropout before the BN (DINOv3) instead of between BN and conv (mmseg's ``cls_seg``).
    """

    def __init__(
        self,
        in_channels: Union[int, Sequence[int]],
        in_index: Union[int, Sequence[int]] = -1,
        use_cls_token: bool = False,
        upsample: int = 1,
        dropout_first: bool = False,
        **kwargs,
    ) -> None:
        in_channels = [in_channels] if isinstance(in_channels, int) else list(in_channels)
        in_index = [in_index] if isinstance(in_index, int) else list(in_index)
        if len(in_channels) != len(in_index):
            raise UserError(f"in_channels {in_channels} and in_index {in_index} must have the same length")
        if upsample < 1:
            raise UserError(f"upsample must be >= 1, got {upsample}")
        channels = sum(in_channels) * (2 if use_cls_token else 1)  # derived: a given 'channels' is ignored
        kwargs.pop("channels", None)
        kwargs.setdefault("norm_cfg", dict(type="BN", requires_grad=True))
        kwargs.setdefault("dropout_ratio", 0.0)  # DINOv2's BNHead (mmseg's default would be 0.1)
        super().__init__(in_channels, channels, in_index=in_index, input_transform="multiple_select", **kwargs)
        self.use_cls_token = use_cls_token
        self.upsample = upsample
        self.dropout_first = dropout_first
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
                raise UserError("LinearProbeHead(use_cls_token=True) needs a backbone with output_cls_token=True")
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
        x = self._features(inputs)
        if self.dropout_first:
            if self.dropout is not None:
                x = self.dropout(x)
            return self.conv_seg(self.bn(x))
        return self.cls_seg(self.bn(x))  # mmseg's cls_seg: dropout, then conv_seg
