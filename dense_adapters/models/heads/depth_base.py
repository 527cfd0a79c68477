"""Shared pieces of the depth heads: bin centres, bin-probability normalisation, and a base head for mmseg's
``DepthEstimator`` (loss on ``gt_depth_map``, predictions clamped to the depth range)."""
from __future__ import annotations

import math
from typing import List, Sequence, Union

import torch
import torch.nn.functional as F
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.utils import SampleList
from torch import Tensor, nn

from ...errors import DataError, UserError
from ..losses import depth_losses  # noqa: F401  (registers SILogLoss and GradientMatchingLoss)

BIN_STRATEGIES = ("UD", "SID")
NORM_STRATEGIES = ("linear", "softmax", "sigmoid")


def bin_centres(min_depth: float, max_depth: float, n_bins: int, strategy: str = "UD") -> Tensor:
    """Depth value of each bin [n_bins]: ``'UD'`` uniform, ``c_k = min + k (max - min) / (n_bins - 1)`` (as DINOv2:
    ``linspace(min, max, n)``, so the first and last bins sit on the range ends); ``'SID'`` log-uniform between
    the same ends (DINOv2's ``logspace(min, max)`` would mean 10**min..10**max, which is not meant)."""
    if strategy not in BIN_STRATEGIES:
        raise UserError(f"unknown bins_strategy {strategy!r}: use one of {BIN_STRATEGIES}")
    if not 0 < min_depth < max_depth:
        raise UserError(f"need 0 < min_depth < max_depth, got {min_depth} and {max_depth}")
    if n_bins < 2:
        raise UserError(f"n_bins must be >= 2, got {n_bins}")
    if strategy == "UD":
        return torch.linspace(min_depth, max_depth, n_bins)
    return torch.exp(torch.linspace(math.log(min_depth), math.log(max_depth), n_bins))


def normalize_bins(logits: Tensor, strategy: str = "linear", eps: float = 0.1) -> Tensor:
    """Bin logits [B, K, H, W] -> probabilities summing to 1 over K.

    ``'linear'`` (AdaBins, DINOv2's default): ``p = (relu(z) + eps) / sum_k (relu(z_k) + eps)``, eps = 0.1;
    ``'softmax'``; ``'sigmoid'``: ``sigmoid(z) / sum_k sigmoid(z_k)``.
    """
    if strategy == "linear":
        w = torch.relu(logits) + eps
    elif strategy == "softmax":
        return torch.softmax(logits, dim=1)
    elif strategy == "sigmoid":
        w = torch.sigmoid(logits)
    else:
        raise UserError(f"unknown norm_strategy {strategy!r}: use one of {NORM_STRATEGIES}")
    return w / w.sum(dim=1, keepdim=True)


def expected_depth(probs: Tensor, centres: Tensor) -> Tensor:
    """Expectation of the bin centres: probs [B, K, H, W], centres [K] -> depth [B, 1, H, W]."""
    if probs.shape[1] != centres.numel():
        raise ValueError(f"{probs.shape[1]} bin probabilities for {centres.numel()} bin centres")
    return torch.einsum("bkhw,k->bhw", probs, centres.to(probs)).unsqueeze(1)


class BaseDepthHead(BaseDecodeHead):
    """Base of the depth heads: ``forward(inputs) -> depth [B, 1, h, w]`` in metres (subclasses), loss against
    ``gt_depth_map`` after resizing the prediction to the ground truth, predictions clamped to
    ``[min_depth, max_depth]`` at test time (as DINOv2's depther). ``out_channels`` is 1 (what
    ``EncoderDecoder.slide_inference`` allocates); the segmentation ``conv_seg`` of mmseg's base is not built.

    Args:
        min_depth, max_depth: depth range in metres (NYU: 1e-3 and 10).
        loss_decode: a loss config or a list of them; each is called as ``loss(pred, gt)`` on [B, 1, H, W] maps.
    """

    def __init__(self, in_channels: Union[int, Sequence[int]], channels: int, min_depth: float = 1e-3,
                 max_depth: float = 10.0,
                 loss_decode: Union[dict, Sequence[dict]] = dict(type="dense_adapters.SILogLoss"),
                 init_cfg: Union[dict, None] = None, **kwargs) -> None:
        if not 0 < min_depth < max_depth:
            raise UserError(f"need 0 < min_depth < max_depth, got {min_depth} and {max_depth}")
        for key in ("num_classes", "out_channels", "threshold"):
            kwargs.pop(key, None)
        kwargs.setdefault("dropout_ratio", 0.0)
        super().__init__(in_channels, channels, num_classes=1, out_channels=1, threshold=0.5,
                         loss_decode=loss_decode, init_cfg=init_cfg, **kwargs)
        del self.conv_seg  # depth heads end in their own layers
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)

    def cls_seg(self, feat: Tensor) -> Tensor:  # pragma: no cover - guard
        raise NotImplementedError("depth heads have no conv_seg; use forward()")

    def _stack_batch_gt(self, batch_data_samples: SampleList) -> Tensor:
        maps = []
        for ds in batch_data_samples:
            if "gt_depth_map" not in ds:
                raise DataError("a training sample has no gt_depth_map: add LoadDepthAnnotation to the pipeline")
            maps.append(ds.gt_depth_map.data)
        return torch.stack(maps, dim=0).float()  # [B, 1, H, W]

    def loss_by_feat(self, depth: Tensor, batch_data_samples: SampleList) -> dict:
        """Depth [B, 1, h, w] -> dict of losses against the ground truth (prediction resized bilinearly)."""
        gt = self._stack_batch_gt(batch_data_samples)
        if depth.shape[2:] != gt.shape[2:]:
            depth = F.interpolate(depth, size=gt.shape[2:], mode="bilinear", align_corners=self.align_corners)
        losses: dict = {}
        losses_decode = self.loss_decode if isinstance(self.loss_decode, nn.ModuleList) else [self.loss_decode]
        for loss_fn in losses_decode:
            value = loss_fn(depth, gt)
            losses[loss_fn.loss_name] = losses.get(loss_fn.loss_name, 0) + value
        return losses

    def clamp_depth(self, depth: Tensor) -> Tensor:
        return depth.clamp(self.min_depth, self.max_depth)

    def predict_by_feat(self, depth: Tensor, batch_img_metas: List[dict]) -> Tensor:
        return self.clamp_depth(super().predict_by_feat(depth, batch_img_metas))
