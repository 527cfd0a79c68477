"""mmseg backbone wrapper around the plain-PyTorch :class:`dense_adapters.nn.RegViT`."""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch import Tensor

from ...nn import PRESETS
from ...nn import RegViT as CoreRegViT
from ...errors import UserError
from ...nn.convert import load_pretrained
from ...registry import MODELS


@MODELS.register_module()
class RegViT(BaseModule):
    """ViT with registers and SkipAt blocks as an mmseg backbone (``type='dense_adapters.RegViT'``).

    Args:
        preset: a key of ``dense_adapters.nn.PRESETS`` (e.g. ``'dinov2_vits14_reg4'``); other keyword arguments
            of the core ``RegViT`` (``arch``, ``num_register_tokens``, ``skip_layers``, ...) override it.
        out_indices: blocks whose outputs are returned (negative counts from the end).
        output_cls_token: return ``[patch_map, cls]`` per level instead of the map alone.
        final_norm: apply the final LayerNorm to every returned level (as DINOv2's ``norm=True``).
        frozen: linear-probing mode: no gradients into the ViT, which stays in eval mode (norms, dropout).
        with_cp: gradient checkpointing of every block (mmseg's name): the same outputs and gradients with the
            activations of one block at a time in memory, for large models at high resolution.
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH_OR_URL_OR_HF_FOLDER, source='auto'|<format>)``
            converts and loads a checkpoint (formats: ``dense_adapters.nn.convert.FORMATS``) and logs one summary.
            A load that would leave a backbone tensor uninitialised or a checkpoint tensor unused is refused in one
            line unless ``partial=True`` (or ``strict=False``) is given; ``strict=True`` also refuses new tensors.

    Returns from ``forward``: a tuple with one entry per ``out_indices``: [B, C, h, w], or
    ``[[B, C, h, w], [B, C]]`` with ``output_cls_token``.
    """

    cfg_kwargs_of = CoreRegViT  # where **vit_kwargs go: the arguments --cfg-options may add (cli/cfg_options.py)

    def __init__(
        self,
        preset: Optional[str] = None,
        out_indices: Union[int, Sequence[int]] = (-1,),
        output_cls_token: bool = False,
        final_norm: bool = True,
        frozen: bool = False,
        with_cp: bool = False,
        init_cfg: Optional[dict] = None,
        **vit_kwargs,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if preset is not None and preset not in PRESETS:
            raise UserError(f"unknown preset {preset!r}: use one of {', '.join(sorted(PRESETS))}")
        kwargs = {**(PRESETS[preset] if preset else {}), **vit_kwargs}
        self.vit = CoreRegViT(**kwargs)
        self.vit.set_grad_checkpointing(with_cp)
        self.out_indices = [out_indices] if isinstance(out_indices, int) else list(out_indices)
        self.output_cls_token = output_cls_token
        if output_cls_token and not self.vit.has_class_token:
            raise UserError("output_cls_token=True needs a class token: set class_token=True")
        self.final_norm = final_norm
        self.frozen = frozen
        if frozen:
            self.vit.requires_grad_(False)

    @property
    def num_prefix_tokens(self) -> int:
        return self.vit.num_prefix_tokens

    def init_weights(self) -> None:
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get("type") == "Pretrained":
            unknown = set(cfg) - {"type", "checkpoint", "source", "strict", "partial", "trust_pickle"}
            if unknown:
                raise UserError(f"init_cfg has unknown keys {sorted(unknown)}: use checkpoint, source, strict, "
                                "partial, trust_pickle")
            report = load_pretrained(self.vit, cfg["checkpoint"], source=cfg.get("source", "auto"),
                                     strict=cfg.get("strict"), partial=bool(cfg.get("partial", False)),
                                     trust_pickle=cfg.get("trust_pickle", False))
            print_log(f"RegViT: {report}", logger="current")
            self._is_init = True
            return
        super().init_weights()

    def train(self, mode: bool = True) -> "RegViT":
        super().train(mode)
        if self.frozen:
            self.vit.eval()
        return self

    def forward(self, x: Tensor) -> tuple:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            maps, prefix = self.vit.forward_intermediates(
                x, self.out_indices, norm=self.final_norm, return_prefix_tokens=True)
        if not self.output_cls_token:
            return tuple(maps)
        return tuple([m, p[:, 0]] for m, p in zip(maps, prefix))
