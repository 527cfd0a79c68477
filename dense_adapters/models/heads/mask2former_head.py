"""mmseg's Mask2Former head, checked for its optional dependency before it is built."""
from __future__ import annotations

from mmengine.config import ConfigDict

from ...registry import MODELS  # first: mmseg imports under mmcv-lite only once the registry set up its stand-in
from ..layers.pixel_decoder import require_mmdet

from mmseg.models.decode_heads import Mask2FormerHead as MMSegMask2FormerHead  # noqa: E402


@MODELS.register_module()
class Mask2FormerHead(MMSegMask2FormerHead):
    """``mmseg.Mask2FormerHead`` (mmdet's head with semantic-segmentation losses and inference), unchanged, except
    that a missing mmdet ends in one line naming the ``m2f`` extra instead of an unrelated ``TypeError`` (mmseg falls
    back to ``BaseModule`` as the parent class when mmdet is not installed).

    Plain-dict sub-configs (a model built from Python rather than from a config file) are turned into
    ``ConfigDict``s, which mmdet's head reads by attribute. Use with ``dense_adapters.MSDeformAttnPixelDecoder`` so
    that the pixel decoder needs no compiled op.
    """

    def __init__(self, *args, **kwargs) -> None:
        require_mmdet()
        kwargs = {k: ConfigDict(v) if isinstance(v, dict) and not isinstance(v, ConfigDict) else v
                  for k, v in kwargs.items()}
        super().__init__(*args, **kwargs)
