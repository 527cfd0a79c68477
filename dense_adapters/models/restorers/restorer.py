"""Restorer: an mmengine ``BaseModel`` for image denoising (loss / predict / tensor modes)."""
from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseDataPreprocessor, BaseModel
from torch import Tensor

from ...errors import UserError
from ...registry import MODELS

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@MODELS.register_module()
class RestorerDataPreprocessor(BaseDataPreprocessor):
    """[3, H, W] images (or [T, 3, H, W] clips) on the 0..255 scale, uint8 or float -> float [B, 3, H, W]
    (or [B, T, 3, H, W]) in [0, 1] on the model's device.

    Images of different sizes in one batch are zero-padded at the bottom/right to the largest; each sample keeps
    its own ``img_shape`` and predictions are cropped back to it. Clips in one batch need one length.
    """

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        inputs = data["inputs"]
        if isinstance(inputs, Tensor) and inputs.ndim in (4, 5):
            inputs = list(inputs)
        if len({tuple(x.shape[:-2]) for x in inputs}) > 1:
            raise UserError(f"a batch mixes inputs of shapes {sorted({tuple(x.shape) for x in inputs})}: clips or "
                            "sequences of different lengths need batch_size=1 (or equal num_frames)")
        H, W = max(x.shape[-2] for x in inputs), max(x.shape[-1] for x in inputs)
        batch = torch.stack([F.pad(x.float(), (0, W - x.shape[-1], 0, H - x.shape[-2])) for x in inputs]) / 255.0
        return dict(inputs=batch, data_samples=data.get("data_samples"))


@MODELS.register_module()
class Restorer(BaseModel):
    """``type='dense_adapters.Restorer'``: either a ``generator`` (an image-to-image net such as
    ``dense_adapters.Uformer``, or a clip-to-clip net such as ``dense_adapters.VideoUformer``: inputs and targets
    [B, T, 3, H, W]) or a ``backbone`` (e.g. ``dense_adapters.RegViT``) + ``head``
    (``dense_adapters.DenoiseHead``) predicting a residual that is added to the input.

    Args:
        loss: pixel loss on [0, 1] images (default Charbonnier, eps 1e-3).
        backbone_mean, backbone_std: normalisation of the backbone's input (the head and the residual work on
            [0, 1] images); ImageNet's by default.
        pad_mode: inputs are padded at the bottom/right to a multiple the network needs (backbone path:
            lcm(patch size, head multiple)) and outputs cropped back.
    """

    def __init__(self, generator: Optional[dict] = None, backbone: Optional[dict] = None, head: Optional[dict] = None,
                 loss: Optional[dict] = None, data_preprocessor: Optional[dict] = None,
                 backbone_mean: Sequence[float] = IMAGENET_MEAN, backbone_std: Sequence[float] = IMAGENET_STD,
                 pad_mode: str = "reflect", init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor or dict(type="dense_adapters.RestorerDataPreprocessor"),
                         init_cfg=init_cfg)
        if (generator is None) == (backbone is None or head is None):
            raise UserError("Restorer needs either generator=... or both backbone=... and head=...")
        self.generator = MODELS.build(generator) if generator is not None else None
        self.backbone = MODELS.build(backbone) if backbone is not None else None
        self.head = MODELS.build(head) if head is not None else None
        self.loss_fn = MODELS.build(loss or dict(type="dense_adapters.CharbonnierLoss", eps=1e-3))
        self.register_buffer("mean", torch.tensor(backbone_mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(backbone_std).view(1, -1, 1, 1), persistent=False)
        self.pad_mode = pad_mode
        multiple = 1
        if self.head is not None:
            patch = getattr(getattr(self.backbone, "vit", self.backbone), "patch_size", 1)
            multiple = math.lcm(int(patch), int(getattr(self.head, "size_multiple", 1)))
        self.size_multiple = multiple

    def _pad(self, x: Tensor) -> Tensor:
        H, W = x.shape[-2:]
        ph, pw = -H % self.size_multiple, -W % self.size_multiple
        if not (ph or pw):
            return x
        mode = "replicate" if self.pad_mode == "reflect" and (ph >= H or pw >= W) else self.pad_mode
        return F.pad(x, (0, pw, 0, ph), mode=mode)

    def restore(self, x: Tensor) -> Tensor:
        """Noisy [B, 3, H, W] (or clips [B, T, 3, H, W]) in [0, 1] -> restored, same shape (not clamped)."""
        if self.generator is not None:
            return self.generator(x)
        H, W = x.shape[-2:]
        xp = self._pad(x)
        feats = self.backbone((xp - self.mean) / self.std)
        return x + self.head(feats, xp)[..., :H, :W]

    def forward(self, inputs: Tensor, data_samples: Optional[list] = None,
                mode: str = "tensor") -> Union[dict, list, Tensor]:
        if mode == "tensor":
            return self.restore(inputs)
        if data_samples is None:
            raise UserError(f"Restorer mode {mode!r} needs data_samples with gt_img")
        if mode == "loss":
            gt = torch.stack([s.gt_img for s in data_samples]).to(inputs.device).float() / 255.0
            if gt.shape != inputs.shape:
                raise UserError(f"training batch {tuple(inputs.shape)} and ground truth {tuple(gt.shape)} differ: "
                                 "crop training pairs to one size (PairedRandomCrop)")
            return {"loss": self.loss_fn(self.restore(inputs), gt)}
        if mode == "predict":
            pred = self.restore(inputs).clamp(0, 1)
            out = []
            for p, s in zip(pred, data_samples):
                h, w = s.metainfo.get("img_shape", p.shape[-2:])
                s.pred_img = p[..., :h, :w].detach()
                out.append(s)
            return out
        raise UserError(f"unknown mode {mode!r}: use 'loss', 'predict' or 'tensor'")
