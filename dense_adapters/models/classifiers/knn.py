"""KNNClassifier: DINO's weighted k-NN evaluation of a frozen backbone's normalised features."""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import Tensor

from ...errors import UserError
from ...evaluation.classification import knn_vote
from ...registry import MODELS
from .image_classifier import POOLS, core_vit, pool_level, with_outputs


@MODELS.register_module()
class KNNClassifier(BaseModel):
    """``type='dense_adapters.KNNClassifier'``: features = L2-normalised cls token after the final norm (DINO /
    DINOv2 ``ModelWithNormalize``), or the normalised patch mean (``feature='avg'``); a sample's class scores are
    the weighted votes of its ``k`` nearest training features (:func:`dense_adapters.evaluation.classification.
    knn_vote`, weight ``exp(sim / temperature)``).

    The feature bank (training split) is filled by :class:`dense_adapters.KNNTestLoop` through
    :meth:`set_bank` before the test split is scored; it is not part of the state dict.

    Args:
        backbone: a ``dense_adapters.RegViT`` config (frozen; weights through its ``init_cfg``).
        num_classes: classes of the bank's labels.
        ks: numbers of neighbours to score (DINOv2: 10, 20, 100, 200); ``main_k`` gives ``pred_score``.
        temperature: DINO's T = 0.07.
        bank_device: where the bank lives (default: the model's device, i.e. the GPU when there is one).
        chunk_size: bank rows compared at once (memory batch x chunk_size).
    """

    def __init__(self, backbone: dict, num_classes: int, ks: Sequence[int] = (10, 20, 100, 200), main_k: int = 20,
                 temperature: float = 0.07, feature: str = "token", bank_device: Optional[str] = None,
                 chunk_size: int = 65536, data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        dp = dict(data_preprocessor or dict(type="dense_adapters.ClsDataPreprocessor"))
        dp.setdefault("num_classes", num_classes)
        super().__init__(data_preprocessor=dp, init_cfg=init_cfg)
        if feature not in POOLS:
            raise UserError(f"feature must be one of {POOLS}, got {feature!r}")
        self.ks = sorted({int(k) for k in ks} | {int(main_k)})
        if min(self.ks) < 1:
            raise UserError(f"k must be >= 1, got {list(ks)}")
        if temperature <= 0:
            raise UserError(f"temperature must be > 0, got {temperature}")
        self.backbone = MODELS.build(with_outputs({**backbone, "frozen": True}, (-1,), feature == "token"))
        core_vit(self.backbone)
        self.num_classes, self.main_k, self.temperature = int(num_classes), int(main_k), float(temperature)
        self.feature, self.bank_device, self.chunk_size = feature, bank_device, int(chunk_size)
        self.bank: Optional[Tensor] = None
        self.bank_labels: Optional[Tensor] = None

    @torch.no_grad()
    def extract_feat(self, inputs: Tensor) -> Tensor:
        """Normalised images -> L2-normalised features [B, C] (float32)."""
        return F.normalize(pool_level(self.backbone(inputs)[-1], self.feature).float(), dim=1, p=2)

    def set_bank(self, features: Tensor, labels: Tensor) -> None:
        """The training features [N, C] (normalised) and labels [N] that vote."""
        if features.ndim != 2 or labels.shape != (features.shape[0],):
            raise UserError(f"bank features [N, C] and labels [N] expected, got {tuple(features.shape)} and "
                            f"{tuple(labels.shape)}")
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise UserError(f"bank labels must lie in 0..{self.num_classes - 1}: set model.num_classes to the "
                            "dataset's class count")
        device = self.bank_device or features.device
        self.bank, self.bank_labels = features.to(device), labels.to(device).long()

    def votes(self, feats: Tensor) -> dict[int, Tensor]:
        if self.bank is None:
            raise UserError("the k-NN bank is empty: run the evaluation with test_cfg=dict(type="
                            "'dense_adapters.KNNTestLoop', ...), which extracts the training features first")
        return knn_vote(feats.to(self.bank.device), self.bank, self.bank_labels, self.num_classes, self.ks,
                        self.temperature, self.chunk_size)

    def forward(self, inputs: Tensor, data_samples: Optional[list] = None,
                mode: str = "tensor") -> Union[dict, list, Tensor]:
        if mode == "tensor":
            return self.extract_feat(inputs)
        if mode == "predict":
            votes = self.votes(self.extract_feat(inputs))
            for i, s in enumerate(data_samples):
                s.pred_score = votes[self.main_k][i].detach().cpu()
                s.pred_scores = {f"k{k}": v[i].detach().cpu() for k, v in votes.items()}
            return list(data_samples)
        raise UserError(f"k-NN evaluation has no {mode!r} mode: it trains nothing; run tools/test.py with the config")
