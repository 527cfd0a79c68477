"""Layer-wise learning-rate decay for ViT backbones (BEiT / ViTDet), on top of mmengine's paramwise options."""
from __future__ import annotations

import re

from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from torch import nn

from ..errors import UserError
from ..registry import OPTIM_WRAPPER_CONSTRUCTORS

# parameters of the ViT's input side (patch embedding, cls/register/mask tokens, position embedding): layer 0
EMBED_NAMES = ("patch_embed", "cls_token", "reg_token", "register_tokens", "storage_tokens", "mask_token",
               "pos_embed", "rope_embed")
_BLOCK = re.compile(r"\.blocks\.(\d+)\.")


def vit_layer_id(name: str, num_layers: int, prefix: str = "backbone.") -> int:
    """Layer of a parameter for layer-wise decay: 0 for the ViT's embeddings, i + 1 for ``blocks.i``, and
    ``num_layers + 1`` for everything after the blocks (final norm) and outside the backbone (neck, head)."""
    if not name.startswith(prefix):
        return num_layers + 1
    block = _BLOCK.search(name)
    if block:
        return int(block.group(1)) + 1
    parts = name[len(prefix):].split(".")
    if any(p in EMBED_NAMES for p in parts[:2]):  # 'backbone.vit.cls_token', 'backbone.patch_embed.proj.weight'
        return 0
    return num_layers + 1


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's default constructor (``custom_keys``, ``norm_decay_mult``, ...) plus a backbone lr multiplier
    and layer-wise lr decay for ViT backbones (BEiT, ViTDet).

    paramwise_cfg options on top of mmengine's:

    * ``backbone_lr_mult`` (default 1.0): multiplies the lr of every ``backbone.*`` parameter. Unlike a
      ``custom_keys={'backbone': ...}`` entry it leaves the other rules working inside the backbone
      (``norm_decay_mult`` on its LayerNorms, ``custom_keys`` such as ``pos_embed`` with ``decay_mult=0``).
    * ``layer_decay_rate`` (default 1.0: off): a backbone parameter at layer ``l`` (:func:`vit_layer_id`) gets
      ``rate ** (num_layers + 1 - l)`` more: the last block ``rate``, the embeddings ``rate ** (num_layers + 1)``.
      ``num_layers`` is the number of ``backbone...blocks.<i>``, counted from the model.

    Backbone lr = base lr x custom_keys lr_mult x backbone_lr_mult x decay factor; the neck and heads are untouched.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: dict = None) -> None:
        paramwise_cfg = dict(paramwise_cfg or {})
        rate = float(paramwise_cfg.pop("layer_decay_rate", 1.0))
        mult = float(paramwise_cfg.pop("backbone_lr_mult", 1.0))
        if not 0.0 < rate <= 1.0:
            raise UserError(f"layer_decay_rate={rate}: use a value in (0, 1] (1.0 turns layer-wise decay off)")
        if mult < 0.0:
            raise UserError(f"backbone_lr_mult={mult}: use a value >= 0")
        # mmengine builds per-parameter groups only for a non-empty paramwise_cfg
        paramwise_cfg.setdefault("custom_keys", {})
        super().__init__(optim_wrapper_cfg, paramwise_cfg)
        self.layer_decay_rate, self.backbone_lr_mult = rate, mult

    def add_params(self, params: list, module: nn.Module, prefix: str = "", is_dcn_module=None) -> None:
        if prefix and not any(p.requires_grad for p in module.parameters()):
            return  # a frozen subtree (frozen backbone) is left out silently, not with one warning per tensor
        super().add_params(params, module, prefix=prefix, is_dcn_module=is_dcn_module)
        if prefix:
            return  # children are handled by the top-level call, once every group exists
        names = {id(p): n for n, p in module.named_parameters()}
        blocks = {int(m.group(1)) for n in names.values() if n.startswith("backbone.")
                  for m in [_BLOCK.search(n)] if m}
        num_layers = max(blocks) + 1 if blocks else 0
        for group in params:
            name = names[id(group["params"][0])]
            if not name.startswith("backbone.") or (self.layer_decay_rate == 1.0 and self.backbone_lr_mult == 1.0):
                continue
            scale = self.backbone_lr_mult * self.layer_decay_rate ** (num_layers + 1 - vit_layer_id(name, num_layers))
            group["lr"] = group.get("lr", self.base_lr) * scale
        frozen = sum(p.numel() for p in module.parameters() if not p.requires_grad)
        print_log(f"backbone lr x{self.backbone_lr_mult}, layer-wise decay {self.layer_decay_rate} over "
                  f"{num_layers} blocks; {frozen / 1e6:.2f}M frozen parameters left out", logger="current")
