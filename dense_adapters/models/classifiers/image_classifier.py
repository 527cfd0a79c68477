"""ImageClassifier: a ViT backbone (with or without registers and SkipAt) and a linear head, trained end to end."""
from __future__ import annotations

from typing import Optional, Union

import torch
from mmengine.model import BaseModel
from torch import Tensor, nn

from ...errors import UserError
from ...registry import MODELS

POOLS = ("token", "avg")


def with_outputs(backbone: dict, out_indices, cls_token: bool) -> dict:
    """The backbone config with the outputs a classifier reads through the wrapper's ``forward`` (so that
    ``frozen`` and ``--compile`` apply): blocks ``out_indices`` after the final norm, with the cls token if asked."""
    return {**backbone, "out_indices": list(out_indices), "output_cls_token": cls_token, "final_norm": True}


def pool_level(level, pool: str = "token") -> Tensor:
    """One level of the wrapper's output (``[patch_map, cls]`` or ``patch_map`` [B, C, h, w]) -> [B, C]: the cls
    token (``'token'``) or the mean of the patch tokens (``'avg'``; cls and registers are never averaged in)."""
    if pool == "token":
        return level[1]
    patch_map = level[0] if isinstance(level, (list, tuple)) else level
    return patch_map.flatten(2).mean(dim=-1)


def core_vit(backbone: nn.Module) -> nn.Module:
    """The plain-PyTorch ViT inside a registered backbone wrapper (``dense_adapters.RegViT``)."""
    vit = getattr(backbone, "vit", None)
    if vit is None or not hasattr(vit, "num_prefix_tokens") or not hasattr(backbone, "out_indices"):
        raise UserError(f"{type(backbone).__name__} is not a RegViT backbone: use type='dense_adapters.RegViT'")
    return vit


@MODELS.register_module()
class ImageClassifier(BaseModel):
    """``type='dense_adapters.ImageClassifier'``: ``backbone`` (``dense_adapters.RegViT``) -> pooled feature ->
    dropout -> ``nn.Linear(embed_dim, num_classes)``, as timm's VisionTransformer head.

    Args:
        backbone: backbone config; its ``drop_path_rate``, ``skip_layers`` (SkipAt) and ``num_register_tokens``
            select the variant, ``init_cfg`` loads pretrained weights.
        num_classes: classes of the head (ImageNet: 1000).
        global_pool: ``'token'`` (cls token after the final norm, DeiT/timm's default) or ``'avg'`` (patch mean).
        head_drop_rate: dropout before the head.
        label_smoothing: smoothing of the hard-label loss (timm's LabelSmoothingCrossEntropy; plain cross entropy
            at 0). With Mixup/CutMix in the data preprocessor the targets are soft (``gt_score``, smoothing folded
            in by timm's Mixup) and the loss is timm's SoftTargetCrossEntropy, as in DeiT's main.py.
        data_preprocessor: default ``dense_adapters.ClsDataPreprocessor`` (ImageNet mean/std).

    Head init as timm's ViT: truncated normal (std 0.02) weights, zero bias.
    """

    def __init__(self, backbone: dict, num_classes: int, global_pool: str = "token", head_drop_rate: float = 0.0,
                 label_smoothing: float = 0.0, data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if global_pool not in POOLS:
            raise UserError(f"global_pool must be one of {POOLS}, got {global_pool!r}")
        if num_classes < 1:
            raise UserError(f"num_classes must be >= 1, got {num_classes}")
        dp = dict(data_preprocessor or dict(type="dense_adapters.ClsDataPreprocessor"))
        dp.setdefault("num_classes", num_classes)
        super().__init__(data_preprocessor=dp, init_cfg=init_cfg)
        self.backbone = MODELS.build(with_outputs(backbone, (-1,), global_pool == "token"))
        vit = core_vit(self.backbone)
        self.num_classes, self.global_pool = int(num_classes), global_pool
        self.head_drop = nn.Dropout(head_drop_rate)
        self.head = nn.Linear(vit.embed_dim, self.num_classes)
        nn.init.trunc_normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)
        from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy

        self.label_smoothing = float(label_smoothing)
        self.hard_loss = (LabelSmoothingCrossEntropy(self.label_smoothing) if self.label_smoothing
                          else nn.CrossEntropyLoss())
        self.soft_loss = SoftTargetCrossEntropy()

    def extract_feat(self, inputs: Tensor) -> Tensor:
        """Normalised images [B, 3, H, W] -> pooled features [B, C] (last block, after the final norm)."""
        return pool_level(self.backbone(inputs)[-1], self.global_pool)

    def logits(self, inputs: Tensor) -> Tensor:
        return self.head(self.head_drop(self.extract_feat(inputs)))

    def loss(self, logits: Tensor, data_samples: list) -> Tensor:
        """DeiT's loss: soft-target cross entropy on Mixup/CutMix targets, else (label-smoothed) cross entropy."""
        if data_samples and data_samples[0].get("gt_score") is not None:
            target = torch.stack([s.gt_score for s in data_samples]).to(logits.device, torch.float32)
            return self.soft_loss(logits.float(), target)
        labels = torch.cat([s.gt_label.reshape(-1)[:1] for s in data_samples]).to(logits.device)
        return self.hard_loss(logits.float(), labels)

    def forward(self, inputs: Tensor, data_samples: Optional[list] = None,
                mode: str = "tensor") -> Union[dict, list, Tensor]:
        if mode == "tensor":
            return self.logits(inputs)
        if mode == "loss":
            if not data_samples:
                raise UserError("ImageClassifier mode 'loss' needs data samples with gt_label")
            return {"loss": self.loss(self.logits(inputs), data_samples)}
        if mode == "predict":
            scores = self.logits(inputs).float().softmax(dim=-1)
            for s, p in zip(data_samples, scores):
                s.pred_score = p.detach()
                s.pred_label = p.argmax().reshape(1)
            return list(data_samples)
        raise UserError(f"unknown mode {mode!r}: use 'loss', 'predict' or 'tensor'")
