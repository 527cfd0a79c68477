"""DPT depth head (Ranftl et al. 2021) on four ViT levels, built from mmseg's reassemble and fusion blocks."""
from __future__ import annotations

from typing import Sequence, Union

import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.dpt_head import FeatureFusionBlock, ReassembleBlocks
from torch import Tensor, nn

from ...errors import UserError
from ...registry import MODELS
from .depth_base import BaseDepthHead


@MODELS.register_module()
class DepthDPTHead(BaseDepthHead):
    """DPT decoder regressing metric depth (``type='dense_adapters.DepthDPTHead'``), as DINOv2's depth DPT.

    Input: four backbone levels ``[map [B, C, h, w], cls [B, C]]`` (backbone ``output_cls_token=True``; the
    RegViT backbone has already dropped the registers from the maps, and the readout uses the cls token only).
    Reassemble (mmseg's ``ReassembleBlocks``): readout ``'project'`` (Linear 2C -> C + GELU on [patch | cls]),
    1x1 projection to ``post_process_channels``, resampling to 4x, 2x, 1x and 1/2x of the grid. A 3x3 conv to
    ``channels`` per level, then fusion (mmseg's ``FeatureFusionBlock``, the same arithmetic as DINOv2's
    ``eval/depth/models/decode_heads/dpt_head.py``) from the coarsest level up: each block resizes the skip level
    to the running map where their sizes differ, adds it, and upsamples x2. On an odd grid (NYU's 35 x 46 at
    patch 14) the 1/2x level has ceil(h/2) rows, so the running map is 2 ceil(h/2) rows at the 1x level, one
    more than the skip: the skip is stretched to it, as in DINOv2. Output head: conv 3x3 C -> C/2, bilinear x2,
    conv 3x3 -> 32, ReLU, conv 1x1 -> 1, then ``relu(x) + min_depth``.

    Output: depth [B, 1, 32 ceil(h/2), 32 ceil(w/2)] in metres (16 h x 16 w on even grids; clamped to
    ``max_depth`` at test time); the estimator resizes it to the image.

    Args:
        embed_dims: backbone width C.
        post_process_channels: channels of the four reassembled levels (DINOv2 ViT-S: 48, 96, 192, 384).
        readout_type: ``'project'``, ``'add'`` or ``'ignore'`` (cls token not used).
        channels: fusion width (DINOv2: 256).
    """

    def __init__(
        self,
        embed_dims: int = 768,
        post_process_channels: Sequence[int] = (96, 192, 384, 768),
        readout_type: str = "project",
        channels: int = 256,
        in_index: Sequence[int] = (0, 1, 2, 3),
        act_cfg: dict = dict(type="ReLU"),
        norm_cfg: Union[dict, None] = None,
        min_depth: float = 1e-3,
        max_depth: float = 10.0,
        **kwargs,
    ) -> None:
        if readout_type not in ("ignore", "add", "project"):
            raise UserError(f"readout_type must be 'ignore', 'add' or 'project', got {readout_type!r}")
        post_process_channels = list(post_process_channels)
        in_index = list(in_index)
        if len(post_process_channels) != 4 or len(in_index) != 4:
            raise UserError(f"DPT needs four levels: got post_process_channels {post_process_channels} and "
                            f"in_index {in_index}")
        kwargs.pop("in_channels", None)
        kwargs.pop("input_transform", None)
        super().__init__([embed_dims] * 4, channels, min_depth=min_depth, max_depth=max_depth, in_index=in_index,
                         input_transform="multiple_select", act_cfg=act_cfg, norm_cfg=norm_cfg, **kwargs)
        self.readout_type = readout_type
        self.reassemble_blocks = ReassembleBlocks(embed_dims, post_process_channels, readout_type)
        self.convs = nn.ModuleList(
            ConvModule(c, channels, kernel_size=3, padding=1, act_cfg=None, bias=False) for c in post_process_channels)
        self.fusion_blocks = nn.ModuleList(FeatureFusionBlock(channels, act_cfg, norm_cfg) for _ in range(4))
        self.fusion_blocks[0].res_conv_unit1 = None  # the coarsest level has no skip input
        self.project = ConvModule(channels, channels, kernel_size=3, padding=1, norm_cfg=norm_cfg)
        self.conv_depth = nn.Sequential(
            nn.Conv2d(channels, channels // 2, kernel_size=3, padding=1),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
            nn.Conv2d(channels // 2, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 1, kernel_size=1),
        )

    def forward(self, inputs: Sequence) -> Tensor:
        """Four levels ``[map [B, C, h, w], cls [B, C]]`` -> depth [B, 1, 32 ceil(h/2), 32 ceil(w/2)], >= min_depth."""
        levels = []
        for x in self._transform_inputs(inputs):
            if not isinstance(x, (list, tuple)):
                raise UserError("DepthDPTHead needs [map, cls] levels: set output_cls_token=True on the backbone")
            levels.append(list(x))
        x = self.reassemble_blocks(levels)  # [B, c_i, 4h, 4w], [.., 2h, 2w], [.., h, w], [.., ceil(h/2), ceil(w/2)]
        x = [conv(f) for conv, f in zip(self.convs, x)]  # [B, channels, ...] each
        out = self.fusion_blocks[0](x[-1])  # [B, channels, 2 ceil(h/2), 2 ceil(w/2)]: h + 1 rows on odd h
        for i in range(1, 4):
            out = self.fusion_blocks[i](out, x[-(i + 1)])  # the skip is resized to the running map, then x2
        out = self.project(out)  # [B, channels, 16 ceil(h/2), 16 ceil(w/2)]
        return F.relu(self.conv_depth(out)) + self.min_depth
