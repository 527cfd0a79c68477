"""Batch-level input processing for the classifiers, on the model's device (timm's prefetcher path).

uint8 [3, H, W] RGB images -> float [B, 3, H, W] normalised with ``mean``/``std`` (0..1 scale); in training
optionally timm's ``RandomErasing`` on the normalised batch and timm's ``Mixup``/CutMix, whose soft targets
(label smoothing folded in) are put into each data sample as ``gt_score``. Labels are checked against the number
of classes on the CPU, before anything reaches the device.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from mmengine.model import BaseDataPreprocessor
from torch import Tensor

from ...errors import DataError, UserError
from ...registry import MODELS

IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)


@MODELS.register_module()
class ClsDataPreprocessor(BaseDataPreprocessor):
    """``type='dense_adapters.ClsDataPreprocessor'``.

    Args:
        mean, std: per-channel normalisation of images scaled to [0, 1] (ImageNet's by default).
        num_classes: labels must be below it; the classifier fills it in from its own ``num_classes``.
        random_erasing: keyword arguments of ``timm.data.RandomErasing`` (DeiT: ``probability=0.25,
            mode='pixel', max_count=1``), applied per image in training; None: off.
        mixup: keyword arguments of ``timm.data.Mixup`` (DeiT: ``mixup_alpha=0.8, cutmix_alpha=1.0,
            label_smoothing=0.1``; ``num_classes`` is filled in), applied per batch in training; None: off.
            Needs an even batch size.
    """

    def __init__(self, mean: Sequence[float] = IMAGENET_DEFAULT_MEAN, std: Sequence[float] = IMAGENET_DEFAULT_STD,
                 num_classes: Optional[int] = None, random_erasing: Optional[dict] = None,
                 mixup: Optional[dict] = None, non_blocking: bool = False) -> None:
        super().__init__(non_blocking=non_blocking)
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise UserError(f"mean and std need 3 values (std > 0), got mean={mean}, std={std}")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.num_classes = num_classes
        self.random_erasing_cfg, self.mixup_cfg = random_erasing, mixup
        self._erase = self._mix = None
        if mixup is not None:
            from timm.data import Mixup

            try:  # build once here so that a typo fails at startup; rebuilt with num_classes when it is known
                Mixup(**{**mixup, "num_classes": mixup.get("num_classes", num_classes or 1000)})
            except TypeError as e:
                raise UserError(f"mixup options {mixup}: {e}") from e

    def _mixup(self):
        if self._mix is None and self.mixup_cfg is not None:
            from timm.data import Mixup

            n = self.mixup_cfg.get("num_classes", self.num_classes)
            if n is None:
                raise UserError("Mixup/CutMix needs num_classes: set model.num_classes")
            self._mix = Mixup(**{**self.mixup_cfg, "num_classes": n})
        return self._mix

    def _eraser(self, device: torch.device):
        if self.random_erasing_cfg is None:
            return None
        if self._erase is None or self._erase.device != device:
            from timm.data.random_erasing import RandomErasing

            try:
                self._erase = RandomErasing(**{**self.random_erasing_cfg, "device": device})
            except (TypeError, AssertionError) as e:
                raise UserError(f"random_erasing options {self.random_erasing_cfg}: {e}") from e
        return self._erase

    def _labels(self, samples: Optional[list]) -> Optional[Tensor]:
        if not samples or samples[0].get("gt_label") is None:
            return None
        labels = torch.cat([torch.as_tensor(s.gt_label).reshape(-1)[:1] for s in samples]).long()
        if self.num_classes is not None and labels.numel() and (labels.min() < 0 or labels.max() >= self.num_classes):
            bad = int(labels.max()) if labels.max() >= self.num_classes else int(labels.min())
            raise DataError(f"class index {bad} outside 0..{self.num_classes - 1}: the data has more classes than "
                            f"the model's num_classes={self.num_classes}; set model.num_classes to the dataset's "
                            "class count")
        return labels

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs, samples = data["inputs"], data.get("data_samples")
        labels = self._labels(samples)  # on the CPU: no device sync for the check
        if isinstance(inputs, Tensor):
            inputs = list(inputs) if inputs.ndim == 4 else [inputs]
        shapes = {tuple(x.shape) for x in inputs}
        if len(shapes) > 1:
            raise DataError(f"images of one batch differ in size {sorted(shapes)[:3]}: the pipeline must resize or "
                            "crop to one size (TimmClsTransform input_size)")
        x = torch.stack(inputs).to(self.device, non_blocking=self._non_blocking)
        if x.ndim != 4 or x.shape[1] != 3:
            raise DataError(f"expected RGB images [B, 3, H, W], got {tuple(x.shape)}")
        x = (x.float() / 255.0 - self.mean) / self.std
        if training:
            eraser = self._eraser(x.device)
            if eraser is not None:
                x = eraser(x)
            mix = self._mixup()
            if mix is not None and labels is not None:
                if x.shape[0] % 2:
                    raise UserError(f"Mixup/CutMix needs an even batch, got {x.shape[0]}: set an even "
                                    "train_dataloader.batch_size (and drop_last=True for epoch-based loops)")
                x, soft = mix(x, labels.to(x.device))
                for s, t in zip(samples, soft):
                    s.gt_score = t
        return dict(inputs=x, data_samples=samples)
