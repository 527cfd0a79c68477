"""Mask2Former's multi-scale deformable-attention pixel decoder with a configurable attention module.

mmdet's ``MSDeformAttnPixelDecoder`` hard-codes its encoder (``Mask2FormerTransformerEncoder``), whose layers
hard-code mmcv's ``MultiScaleDeformableAttention`` (compiled CUDA op on GPUs). The subclasses here build the encoder
layers' self-attention from the registry instead, so a config chooses the kernel::

    pixel_decoder=dict(type='dense_adapters.MSDeformAttnPixelDecoder', encoder=dict(layer_cfg=dict(
        self_attn_cfg=dict(type='dense_adapters.MultiScaleDeformableAttention', impl='auto', ...))))

Everything else (parameters, state-dict keys, forward) is mmdet's. mmdet is an optional dependency (the ``m2f``
extra): without it this module still imports, and building one of its classes raises one line saying what to install.
"""
from __future__ import annotations

import copy
import importlib.util

from ...errors import UserError
from ...registry import MODELS

MMDET_HINT = ("Mask2Former needs mmdet, which is not installed: pip install 'dense-adapters[m2f]' "
              "(or pip install 'mmdet>=3.3,<3.4')")
DEFAULT_ATTN = "dense_adapters.MultiScaleDeformableAttention"


def has_mmdet() -> bool:
    """True when mmdet can be imported."""
    try:
        return importlib.util.find_spec("mmdet") is not None
    except (ImportError, ValueError):  # a None entry in sys.modules (blocked import) raises ValueError
        return False


def require_mmdet() -> None:
    """Raise :class:`UserError` naming the ``m2f`` extra when mmdet is missing."""
    if not has_mmdet():
        raise UserError(MMDET_HINT)


if has_mmdet():
    from mmdet.models.layers import MSDeformAttnPixelDecoder as MMDetPixelDecoder
    from mmdet.models.layers.transformer import DeformableDetrTransformerEncoderLayer, Mask2FormerTransformerEncoder
    from mmcv.cnn import build_norm_layer
    from mmcv.cnn.bricks.transformer import FFN
    from mmengine.config import ConfigDict
    from mmengine.model import ModuleList

    class DeformableEncoderLayer(DeformableDetrTransformerEncoderLayer):
        """Deformable DETR encoder layer (post-norm: attention, norm, FFN, norm) whose self-attention is built from
        ``self_attn_cfg['type']`` (default ``dense_adapters.MultiScaleDeformableAttention``)."""

        def _init_layers(self) -> None:
            cfg = dict(self.self_attn_cfg)
            cfg.setdefault("type", DEFAULT_ATTN)
            self.self_attn = MODELS.build(cfg)
            self.embed_dims = self.self_attn.embed_dims
            self.ffn = FFN(**self.ffn_cfg)
            self.norms = ModuleList([build_norm_layer(self.norm_cfg, self.embed_dims)[1] for _ in range(2)])

    class DeformableEncoder(Mask2FormerTransformerEncoder):
        """Mask2Former's pixel-decoder encoder built from :class:`DeformableEncoderLayer`."""

        def _init_layers(self) -> None:
            if self.num_cp > 0:
                raise UserError("encoder.num_cp (fairscale activation checkpointing) is not supported here: "
                                "set num_cp=-1")
            self.layers = ModuleList([DeformableEncoderLayer(**self.layer_cfg) for _ in range(self.num_layers)])
            self.embed_dims = self.layers[0].embed_dims

    @MODELS.register_module()
    class MSDeformAttnPixelDecoder(MMDetPixelDecoder):
        """mmdet's pixel decoder whose encoder layers take their attention module from the config.

        Same arguments and state-dict keys as ``mmdet.MSDeformAttnPixelDecoder``; ``encoder.layer_cfg.
        self_attn_cfg.type`` picks the attention (default ``dense_adapters.MultiScaleDeformableAttention``, which
        needs no compiled op). ``strides`` only normalise the reference points (they cancel out), so the strides of
        a patch-14 pyramid (3.5/7/14/28) work unchanged.
        """

        def __init__(self, *args, encoder: dict, **kwargs) -> None:
            encoder = ConfigDict(encoder)
            # mmdet's __init__ builds its own encoder (mmcv's attention, which takes neither 'type' nor 'impl'):
            # let it build a one-layer one, then put ours (same state-dict keys) in its place before any use
            stand_in = copy.deepcopy(encoder)
            stand_in.num_layers = 1
            attn = stand_in.layer_cfg.self_attn_cfg
            for key in ("type", "impl"):
                attn.pop(key, None)
            super().__init__(*args, encoder=stand_in, **kwargs)
            self.encoder = DeformableEncoder(**encoder)

else:

    @MODELS.register_module()
    class MSDeformAttnPixelDecoder:  # noqa: D101  (stands in so that a config without mmdet fails in one line)
        def __init__(self, *args, **kwargs) -> None:
            require_mmdet()
