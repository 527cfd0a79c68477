"""Hook that logs high-norm token statistics of the backbone during training (Darcet et al.'s artifact)."""
from __future__ import annotations

from operator import attrgetter
from typing import Optional, Sequence, Union

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from ..analysis.norms import outlier_mask, token_norms
from ..errors import UserError
from ..registry import HOOKS

DATA_BATCH = Optional[Union[dict, tuple, list]]


@HOOKS.register_module()
class TokenNormHook(Hook):
    """Every ``interval`` training iterations, measure token norms on (part of) the current batch and send
    ``token_norm/...`` scalars to every visualizer backend (TensorBoard, local JSON, ...).

    Args:
        interval: iterations between measurements.
        layers: blocks to measure (negative counts from the end); default: the last block.
        threshold: absolute norm above which a patch is an outlier (Darcet et al.: 150 for DINOv2 ViT-g).
        relative: instead, outlier above ``relative`` x the image's median patch norm.
        backbone: attribute path from the model to a ``dense_adapters.nn.RegViT`` (``backbone.vit`` for the
            ``dense_adapters.RegViT`` mmseg backbone; a path to a module with ``forward_blocks`` works too).
        max_images: images of the batch to use (the measurement is an extra no-grad forward).

    Scalars per measured block ``b``: ``token_norm/b{b}_outlier_frac``, ``_patch_max``, ``_patch_median``, and
    ``_cls`` / ``_reg_max`` where those tokens exist.
    """

    priority = "LOW"

    def __init__(self, interval: int = 50, layers: Optional[Sequence[int]] = None, threshold: float = 150.0,
                 relative: Optional[float] = None, backbone: str = "backbone.vit", max_images: int = 2) -> None:
        if interval < 1:
            raise UserError(f"TokenNormHook interval must be >= 1, got {interval}")
        if max_images < 1:
            raise UserError(f"TokenNormHook max_images must be >= 1, got {max_images}")
        if relative is None and threshold <= 0 or relative is not None and relative <= 0:
            raise UserError("TokenNormHook threshold/relative must be > 0")
        self.interval = interval
        self.layers = list(layers) if layers is not None else [-1]
        self.threshold = threshold
        self.relative = relative
        self.backbone = backbone
        self.max_images = max_images

    def _vit(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        try:
            vit = attrgetter(self.backbone)(model)
        except AttributeError:
            raise UserError(f"TokenNormHook: the model ({type(model).__name__}) has no '{self.backbone}': set "
                                 "backbone= to the path of its RegViT (e.g. 'backbone.vit' or 'backbone')") from None
        if not hasattr(vit, "forward_blocks"):
            raise UserError(f"TokenNormHook: '{self.backbone}' is a {type(vit).__name__}, not a RegViT with "
                            "forward_blocks: point backbone= at the dense_adapters.nn.RegViT inside it")
        return model, vit

    def before_train(self, runner) -> None:
        _, vit = self._vit(runner)  # fail before the first iteration, not after `interval` of them
        depth = vit.depth
        bad = [i for i in self.layers if not -depth <= i < depth]
        if bad:
            raise UserError(f"TokenNormHook layers {bad} out of range for a ViT of depth {depth}")

    @torch.no_grad()
    def measure(self, model, vit, data_batch) -> dict:
        """Scalars of one measurement on ``data_batch`` (preprocessed by the model's data_preprocessor)."""
        data = model.data_preprocessor(data_batch, False)
        x = data["inputs"] if isinstance(data, dict) else data[0]
        if isinstance(x, (list, tuple)):
            x = torch.stack(list(x))
        x = x[: self.max_images]
        was_training = vit.training
        vit.eval()  # no dropout / drop-path in the measurement
        try:
            norms = token_norms(vit, x, self.layers)
        finally:
            vit.train(was_training)
        out = {}
        for ln in norms:
            key = f"token_norm/b{ln.layer}"
            mask = outlier_mask(ln.patches, self.threshold, self.relative)
            out[f"{key}_outlier_frac"] = mask.float().mean().item()
            out[f"{key}_patch_max"] = ln.patches.max().item()
            out[f"{key}_patch_median"] = ln.patches.median().item()
            if ln.cls is not None:
                out[f"{key}_cls"] = ln.cls.mean().item()
            if ln.registers.numel():
                out[f"{key}_reg_max"] = ln.registers.max().item()
        return out

    def after_train_iter(self, runner, batch_idx: int, data_batch: DATA_BATCH = None, outputs=None) -> None:
        if not self.every_n_train_iters(runner, self.interval) or data_batch is None:
            return
        model, vit = self._vit(runner)
        scalars = self.measure(model, vit, data_batch)
        runner.visualizer.add_scalars(scalars, step=runner.iter + 1)
        worst = max((k for k in scalars if k.endswith("_outlier_frac")), key=scalars.get)
        print_log(f"TokenNormHook iter {runner.iter + 1}: {worst}={scalars[worst]:.4f}, "
                  f"{worst.replace('outlier_frac', 'patch_max')}="
                  f"{scalars[worst.replace('outlier_frac', 'patch_max')]:.1f}", logger="current")
