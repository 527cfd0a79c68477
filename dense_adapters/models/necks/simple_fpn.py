"""ViTDet's simple feature pyramid (Li et al. 2022, "Exploring Plain Vision Transformer Backbones for Object
Detection"): four scales from a plain ViT's single-stride map, for heads that want strides 4/8/16/32.

Per scale, as detectron2's ``SimpleFeaturePyramid``:

* 4x: ConvTranspose 2x2/2 (C -> C/2), norm, GELU, ConvTranspose 2x2/2 (C/2 -> C/4);
* 2x: ConvTranspose 2x2/2 (C -> C/2);
* 1x: identity;
* 0.5x: max-pool 2x2/2 (odd sides are floored, as ``nn.MaxPool2d``);

then a 1x1 conv to ``out_channels`` with norm and a 3x3 conv with norm (no activation; convs carry a bias only
when there is no norm). The default norm is ViTDet's LayerNorm over channels (``LN2d``, eps 1e-6).

A ViT with patch p gives strides p/4, p/2, p, 2p in pixels of the image the patch grid covers: 4/8/16/32 for
patch 16, 3.5/7/14/28 for patch 14. Maps of an (h, w) grid come out as (4h, 4w), (2h, 2w), (h, w), (h//2, w//2).
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from ...errors import UserError
from ...registry import MODELS

SCALES = (4.0, 2.0, 1.0, 0.5)


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of [B, C, H, W] maps (detectron2's ``LayerNorm``; ViTDet's "LN")."""

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        return self.weight[:, None, None] * ((x - u) / torch.sqrt(s + self.eps)) + self.bias[:, None, None]


def build_norm(norm_cfg: Optional[dict], channels: int) -> nn.Module:
    """``dict(type='LN2d', eps=...)`` -> :class:`LayerNorm2d`; any other type (BN, SyncBN, GN) through mmcv."""
    cfg = dict(norm_cfg)
    if cfg.get("type") == "LN2d":
        return LayerNorm2d(channels, eps=cfg.get("eps", 1e-6))
    from mmcv.cnn import build_norm_layer

    return build_norm_layer(cfg, channels)[1]


@MODELS.register_module()
class SimpleFeaturePyramid(BaseModule):
    """ViTDet's simple feature pyramid as an mmseg neck (``type='dense_adapters.SimpleFeaturePyramid'``).

    Args:
        in_channels: width of the ViT maps (one int, or one per scale).
        out_channels: width of every output level (ViTDet: 256).
        scale_factors: output scales relative to the input map, from 4.0, 2.0, 1.0, 0.5.
        in_index: which backbone output feeds each scale. An int (default -1, the last one): every scale from the
            same map (ViTDet, from the last block). A sequence, one per scale: e.g. ``(0, 1, 2, 3)`` with a backbone
            returning 4 evenly spaced blocks (``out_indices=(2, 5, 8, 11)``), the shallowest block at 4x.
        norm_cfg: ``dict(type='LN2d')`` (ViTDet), an mmcv norm (``BN``, ``SyncBN``, ``GN``...), or None (no norm,
            convs with bias).

    Returns from ``forward``: a tuple of maps [B, out_channels, s*h, s*w], one per scale, highest resolution first.
    """

    def __init__(
        self,
        in_channels: Union[int, Sequence[int]],
        out_channels: int = 256,
        scale_factors: Sequence[float] = SCALES,
        in_index: Union[int, Sequence[int]] = -1,
        norm_cfg: Optional[dict] = dict(type="LN2d", eps=1e-6),
        init_cfg: Optional[dict] = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        scale_factors = tuple(float(s) for s in scale_factors)
        bad = [s for s in scale_factors if s not in SCALES]
        if bad or not scale_factors:
            raise UserError(f"scale_factors {scale_factors}: each must be one of {SCALES}")
        n = len(scale_factors)
        dims = [int(in_channels)] * n if isinstance(in_channels, int) else [int(c) for c in in_channels]
        index = [int(in_index)] * n if isinstance(in_index, int) else [int(i) for i in in_index]
        if len(dims) != n or len(index) != n:
            raise UserError(f"in_channels {in_channels} and in_index {in_index} need one entry per scale "
                            f"({n}) or a single int")
        self.scale_factors, self.in_index, self.out_channels = scale_factors, index, out_channels
        use_bias = norm_cfg is None

        def norm(c: int) -> nn.Module:
            return nn.Identity() if norm_cfg is None else build_norm(norm_cfg, c)

        self.stages = nn.ModuleList()
        for scale, dim in zip(scale_factors, dims):
            if scale == 4.0:
                if dim % 4:
                    raise UserError(f"scale 4 halves the width twice: in_channels {dim} must be divisible by 4")
                layers = [nn.ConvTranspose2d(dim, dim // 2, 2, stride=2), norm(dim // 2), nn.GELU(),
                          nn.ConvTranspose2d(dim // 2, dim // 4, 2, stride=2)]
                width = dim // 4
            elif scale == 2.0:
                if dim % 2:
                    raise UserError(f"scale 2 halves the width: in_channels {dim} must be even")
                layers, width = [nn.ConvTranspose2d(dim, dim // 2, 2, stride=2)], dim // 2
            elif scale == 1.0:
                layers, width = [], dim
            else:
                layers, width = [nn.MaxPool2d(2, stride=2)], dim
            layers += [nn.Conv2d(width, out_channels, 1, bias=use_bias), norm(out_channels),
                       nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=use_bias), norm(out_channels)]
            self.stages.append(nn.Sequential(*layers))

    def forward(self, inputs: Union[Tensor, Sequence[Tensor]]) -> tuple[Tensor, ...]:
        """inputs: the backbone's tuple of [B, C, h, w] maps (or one map) -> one map per scale."""
        feats = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        for i in self.in_index:
            if not -len(feats) <= i < len(feats):
                raise UserError(f"SimpleFeaturePyramid in_index {self.in_index} needs more than the {len(feats)} "
                                "map(s) the backbone returns: set the backbone's out_indices to match")
        return tuple(stage(feats[i]) for stage, i in zip(self.stages, self.in_index))
