"""DINOv2's linear evaluation: a grid of linear heads trained at once on the frozen features of a ViT.

Features (``dinov2/eval/linear.py``, ``create_linear_input``): the cls tokens of the last ``n`` blocks, each after
the final norm, concatenated, optionally followed by the mean of the last block's normed patch tokens (registers are
prefix tokens: never averaged in). The backbone runs once per batch for the deepest ``n``; every
(n, avgpool) input is built once and shared by the heads of all learning rates. Each head is ``nn.Linear`` with
N(0, 0.01) weights and zero bias; the training loss is the sum of the heads' cross entropies, so each head gets
exactly the gradient it would get alone. Learning rates are per head (one optimizer parameter group each, see
:class:`dense_adapters.HeadGridOptimWrapperConstructor`), scaled by total batch / 256 with mmengine's
``auto_scale_lr`` as DINOv2's ``scale_lr``.
"""
from __future__ import annotations

import itertools
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import Tensor, nn

from ...errors import UserError
from ...registry import MODELS
from .image_classifier import core_vit, with_outputs

DINOV2_LEARNING_RATES = (1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1)


def linear_input(levels: Sequence, n: int, avgpool: bool) -> Tensor:
    """DINOv2's head input from the backbone's ``[patch_map [B, C, h, w], cls [B, C]]`` levels (the last blocks
    after the final norm, as ``get_intermediate_layers(x, n, return_class_token=True)``): the cls tokens of the last
    ``n`` levels concatenated, then (``avgpool``) the mean of the last level's patch tokens: [B, (n + avgpool) * C],
    float32. Registers are prefix tokens and never part of the patch map."""
    if n > len(levels):
        raise UserError(f"{n} blocks asked, {len(levels)} computed")
    last = levels[-n:]
    feats = [cls for _, cls in last] + ([last[-1][0].flatten(2).mean(dim=-1)] if avgpool else [])
    return torch.cat(feats, dim=-1).float()


def head_name(n: int, avgpool: bool, lr: float) -> str:
    return f"blocks{n}_avgpool{int(avgpool)}_lr{lr:g}"


@MODELS.register_module()
class LinearProbeClassifier(BaseModel):
    """``type='dense_adapters.LinearProbeClassifier'``: frozen ``backbone`` + the grid of linear heads
    ``learning_rates`` x ``n_last_blocks`` x ``avgpool`` (DINOv2's defaults: 13 x {1, 4} x {False, True} = 52).

    Args:
        backbone: a ``dense_adapters.RegViT`` config; it is always frozen (eval mode, no gradients).
        num_classes: classes of every head.
        head_init_std, head_seed: head weights ~ N(0, std) drawn from a generator seeded with ``head_seed``, so that
            a head's start depends only on its input width and the seed, not on its place in the grid.
        selected_head: buffer, -1 until a head is chosen on a held-out split (``dense_adapters.LinearProbeTestLoop``);
            then ``predict`` also returns that head's scores as ``pred_score``.

    ``predict`` puts every head's logits into each data sample (``grid_scores`` [num_heads, C], names in
    ``grid_names``) for :class:`dense_adapters.LinearProbeAccuracy`.
    """

    def __init__(self, backbone: dict, num_classes: int, n_last_blocks: Sequence[int] = (1, 4),
                 avgpool: Sequence[bool] = (False, True), learning_rates: Sequence[float] = DINOV2_LEARNING_RATES,
                 head_init_std: float = 0.01, head_seed: int = 0, data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        dp = dict(data_preprocessor or dict(type="dense_adapters.ClsDataPreprocessor"))
        dp.setdefault("num_classes", num_classes)
        super().__init__(data_preprocessor=dp, init_cfg=init_cfg)
        if backbone.get("frozen") is False:
            raise UserError("the linear probe trains heads on frozen features: drop backbone.frozen=False")
        ns = sorted({int(n) for n in n_last_blocks})
        if not ns or min(ns) < 1:
            raise UserError(f"n_last_blocks must be positive block counts, got {list(n_last_blocks)}")
        self.backbone = MODELS.build(with_outputs({**backbone, "frozen": True}, range(-max(ns), 0), True))
        vit = core_vit(self.backbone)
        if not vit.has_class_token:
            raise UserError("the linear probe reads cls tokens: the backbone needs class_token=True")
        pools, lrs = sorted({bool(a) for a in avgpool}), list(learning_rates)
        if not ns or not lrs or not pools:
            raise UserError("the head grid needs at least one n_last_blocks, avgpool and learning rate")
        if max(ns) > vit.depth:
            raise UserError(f"n_last_blocks {ns} must lie in 1..{vit.depth} (the backbone's depth)")
        if min(lrs) <= 0:
            raise UserError(f"learning rates must be > 0, got {lrs}")
        self.num_classes, self.max_blocks = int(num_classes), max(ns)
        # DINOv2's order: n, then avgpool, then learning rate
        self.specs = [(n, a, float(lr)) for n, a, lr in itertools.product(ns, pools, lrs)]
        self.head_names = [head_name(*s) for s in self.specs]
        C = vit.embed_dim
        init: dict[int, Tensor] = {}  # one draw per input width (all learning rates start alike)
        self.heads = nn.ModuleList()
        for n, a, _ in self.specs:
            dim = (n + a) * C
            if dim not in init:
                g = torch.Generator().manual_seed(head_seed)
                init[dim] = torch.randn(self.num_classes, dim, generator=g, device="cpu").mul_(head_init_std)
            head = nn.utils.skip_init(nn.Linear, dim, self.num_classes)
            with torch.no_grad():
                head.weight.copy_(init[dim])
                head.bias.zero_()
            self.heads.append(head)
        self.register_buffer("selected_head", torch.tensor(-1, dtype=torch.long))

    @property
    def learning_rates(self) -> list[float]:
        return [lr for _, _, lr in self.specs]

    def optim_param_groups(self) -> list[dict]:
        """One optimizer parameter group per head with its own learning rate (before batch scaling)."""
        return [dict(params=list(h.parameters()), lr=lr, name=name)
                for h, (_, _, lr), name in zip(self.heads, self.specs, self.head_names)]

    def select_head(self, index: int) -> None:
        if not -1 <= index < len(self.heads):
            raise UserError(f"head index {index} outside 0..{len(self.heads) - 1}")
        self.selected_head.fill_(int(index))

    def features(self, inputs: Tensor) -> dict[tuple[int, bool], Tensor]:
        """The frozen backbone once per batch -> {(n, avgpool): head input [B, D]}."""
        with torch.no_grad():
            levels = self.backbone(inputs)
            return {(n, a): linear_input(levels, n, a) for n, a in {(n, a) for n, a, _ in self.specs}}

    def grid_logits(self, inputs: Tensor) -> Tensor:
        """All heads' logits [B, num_heads, num_classes]."""
        feats = self.features(inputs)
        return torch.stack([h(feats[(n, a)]) for h, (n, a, _) in zip(self.heads, self.specs)], dim=1)

    def forward(self, inputs: Tensor, data_samples: Optional[list] = None,
                mode: str = "tensor") -> Union[dict, list, Tensor]:
        if mode == "tensor":
            return self.grid_logits(inputs)
        if mode == "loss":
            labels = torch.cat([s.gt_label.reshape(-1)[:1] for s in data_samples]).to(inputs.device)
            logits = self.grid_logits(inputs).float()  # [B, H, C]
            per_head = torch.stack([F.cross_entropy(logits[:, i], labels) for i in range(logits.shape[1])])
            return {"loss": per_head.sum(), "ce_min": per_head.min().detach()}
        if mode == "predict":
            logits = self.grid_logits(inputs).float()
            sel = int(self.selected_head)
            for s, lg in zip(data_samples, logits):
                s.grid_scores = lg.detach()
                s.grid_names = self.head_names
                s.selected_head = sel
                if sel >= 0:
                    s.pred_score = lg[sel].softmax(-1).detach()
            return list(data_samples)
        raise UserError(f"unknown mode {mode!r}: use 'loss', 'predict' or 'tensor'")
