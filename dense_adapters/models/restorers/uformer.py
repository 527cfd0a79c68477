"""The plain-PyTorch Uformer registered as a generator for :class:`dense_adapters.Restorer`."""
from __future__ import annotations

from typing import Optional

from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch import Tensor

from ...errors import CheckpointError, UserError
from ...nn.convert import FORMATS, detect_source, load_pretrained, read_checkpoint
from ...nn.uformer import UFORMER_PRESETS
from ...nn.uformer import Uformer as CoreUformer
from ...registry import MODELS

PRETRAINED_KEYS = ("type", "checkpoint", "source", "strict", "partial", "trust_pickle")


@MODELS.register_module()
class Uformer(BaseModule):
    """``type='dense_adapters.Uformer'``: ``preset`` ``'T'``/``'S'``/``'B'`` (or none) plus any keyword of the
    core :class:`dense_adapters.nn.uformer.Uformer` (``skip_mode='parametric'`` for SkipAt, ``shift_from_size``).

    ``init_cfg=dict(type='Pretrained', checkpoint=PATH, source='auto'|'uformer'|'uformer-native')`` converts and
    loads a Uformer checkpoint (the authors' release or ours) through ``dense_adapters.nn.convert.load_pretrained``:
    a tensor left uninitialised or unused is refused in one line unless ``partial=True``.
    """

    def __init__(self, preset: Optional[str] = None, init_cfg: Optional[dict] = None, **kwargs) -> None:
        super().__init__(init_cfg=init_cfg)
        if preset is not None and preset not in UFORMER_PRESETS:
            raise UserError(f"unknown Uformer preset {preset!r}: use one of {sorted(UFORMER_PRESETS)}")
        self.net = CoreUformer(**{**(UFORMER_PRESETS[preset] if preset else {}), **kwargs})

    def init_weights(self) -> None:
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get("type") == "Pretrained":
            unknown = set(cfg) - set(PRETRAINED_KEYS)
            if unknown:
                raise UserError(f"init_cfg has unknown keys {sorted(unknown)}: use {', '.join(PRETRAINED_KEYS[1:])}")
            report = load_pretrained(self.net, cfg["checkpoint"], source=cfg.get("source", "auto"),
                                     strict=cfg.get("strict"), partial=bool(cfg.get("partial", False)),
                                     trust_pickle=cfg.get("trust_pickle", False))
            print_log(f"Uformer: {report}", logger="current")
            self._is_init = True
            return
        if self.init_cfg:  # another mmengine initialiser; the core initialises itself on construction
            super().init_weights()

    def forward(self, x: Tensor) -> Tensor:
        """[B, 3, H, W] in [0, 1] -> restored [B, 3, H, W]."""
        return self.net(x)


def is_uformer_release(path: str, trust_pickle: bool = False) -> bool:
    """Whether ``path`` holds a Uformer in a converter's layout other than a Runner checkpoint of a Restorer (the
    authors' release: ``--from uformer``), i.e. weights to load into the generator, not with ``load_from``."""
    ckpt = read_checkpoint(path, trust_pickle=trust_pickle)
    try:
        name = detect_source(ckpt.obj, ckpt.hf_config, none_ok=True)
    except CheckpointError:  # no state dict at all: not a release; the Runner-checkpoint path says what is wrong
        return False
    return name is not None and FORMATS[name].model_family == "uformer" and name != "uformer-native"
