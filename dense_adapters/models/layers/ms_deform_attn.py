"""Multi-scale deformable attention (Deformable DETR) that runs on every device, with or without compiled mmcv.

mmcv's ``MultiScaleDeformableAttention`` calls its compiled CUDA op for every CUDA tensor. Under mmcv-lite that op
does not exist, so a Mask2Former pixel decoder fails on the first GPU forward. This subclass keeps mmcv's parameters,
initialisation and state-dict keys, and chooses the kernel per call through ``impl``:

* ``'auto'`` (default): mmcv's compiled op for CUDA tensors when compiled mmcv is installed, otherwise mmcv's PyTorch
  implementation (``multi_scale_deformable_attn_pytorch``: one bilinear ``grid_sample`` per level) on any device;
* ``'pytorch'``: always the PyTorch implementation;
* ``'cuda'``: always the compiled op; anything else (mmcv-lite, CPU tensors) raises :class:`CompiledOpUnavailable`.

Nothing is patched: a config selects this module by type (``type='dense_adapters.MultiScaleDeformableAttention'``),
e.g. in the encoder layer of ``dense_adapters.MSDeformAttnPixelDecoder``.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ... import _mmcv_lite
from ...errors import CompiledOpUnavailable, UserError
from ...registry import MODELS  # first: under mmcv-lite, mmcv.ops imports only once the registry set up its stand-in

from mmcv.ops import multi_scale_deform_attn as mmcv_msda  # noqa: E402

MMCVMultiScaleDeformableAttention = mmcv_msda.MultiScaleDeformableAttention
MultiScaleDeformableAttnFunction = mmcv_msda.MultiScaleDeformableAttnFunction  # the compiled op (full mmcv)
multi_scale_deformable_attn_pytorch = mmcv_msda.multi_scale_deformable_attn_pytorch

IMPLS = ("auto", "pytorch", "cuda")


def resolve_impl(impl: str, device_type: str, compiled: Optional[bool] = None) -> str:
    """The kernel that ``impl`` runs on ``device_type``: ``'cuda'`` (compiled op) or ``'pytorch'``.

    ``compiled`` says whether compiled mmcv ops are installed (default: detected).
    """
    if impl not in IMPLS:
        raise UserError(f"unknown deformable-attention impl {impl!r}: use one of {IMPLS}")
    compiled = _mmcv_lite.has_compiled_mmcv() if compiled is None else compiled
    if impl == "pytorch":
        return "pytorch"
    if impl == "cuda":
        if not compiled:
            raise CompiledOpUnavailable(
                "deformable attention impl='cuda' needs compiled mmcv ops, but only mmcv-lite is installed: install "
                "full mmcv (pip install 'mmcv>=2.0.0rc4,<2.2.0') or use impl='auto' (PyTorch kernel)")
        if device_type != "cuda":
            raise CompiledOpUnavailable(
                f"deformable attention impl='cuda' runs on CUDA tensors only, got {device_type}: use impl='auto'")
        return "cuda"
    return "cuda" if compiled and device_type == "cuda" else "pytorch"


def deformable_attention_pytorch(value: Tensor, spatial_shapes: Tensor, sampling_locations: Tensor,
                                 attention_weights: Tensor) -> Tensor:
    """mmcv's PyTorch kernel, computed in fp32 for half/bf16 inputs (the sampling grid needs the precision, and
    ``grid_sample`` wants one dtype for input and grid).

    value [B, S, heads, d]; spatial_shapes [L, 2] as (h, w); sampling_locations [B, Q, heads, L, P, 2] as (x, y) in
    [0, 1]; attention_weights [B, Q, heads, L, P] -> [B, Q, heads * d].
    """
    dtype = value.dtype
    if dtype in (torch.float16, torch.bfloat16):
        with torch.autocast(value.device.type, enabled=False):
            out = multi_scale_deformable_attn_pytorch(value.float(), spatial_shapes, sampling_locations.float(),
                                                      attention_weights.float())
        return out.to(dtype)
    return multi_scale_deformable_attn_pytorch(value, spatial_shapes, sampling_locations.to(dtype),
                                               attention_weights.to(dtype))


@MODELS.register_module()
class MultiScaleDeformableAttention(MMCVMultiScaleDeformableAttention):
    """mmcv's multi-scale deformable attention with a kernel choice (``impl``, see the module docstring).

    Same arguments, parameters and checkpoints as ``mmcv.ops.MultiScaleDeformableAttention``, plus ``impl``.
    """

    def __init__(self, *args, impl: str = "auto", **kwargs) -> None:
        if impl not in IMPLS:
            raise UserError(f"unknown deformable-attention impl {impl!r}: use one of {IMPLS}")
        super().__init__(*args, **kwargs)
        self.impl = impl

    def kernel_for(self, value: Tensor) -> str:
        """The kernel a call on ``value`` uses: ``'cuda'`` or ``'pytorch'``."""
        return resolve_impl(self.impl, value.device.type)

    def forward(self, query: Tensor, key: Optional[Tensor] = None, value: Optional[Tensor] = None,
                identity: Optional[Tensor] = None, query_pos: Optional[Tensor] = None,
                key_padding_mask: Optional[Tensor] = None, reference_points: Optional[Tensor] = None,
                spatial_shapes: Optional[Tensor] = None, level_start_index: Optional[Tensor] = None,
                **kwargs) -> Tensor:
        """As mmcv's forward: query [Q, B, C] ([B, Q, C] with ``batch_first``), value [S, B, C] (default: query),
        reference_points [B, Q, L, 2] normalised (x, y) or [B, Q, L, 4] boxes, spatial_shapes [L, 2] (h, w),
        level_start_index [L]; returns the query's shape (dropout(output) + identity)."""
        value = query if value is None else value
        identity = query if identity is None else identity
        if query_pos is not None:
            query = query + query_pos
        if not self.batch_first:
            query, value = query.permute(1, 0, 2), value.permute(1, 0, 2)
        B, Q, _ = query.shape
        S = value.shape[1]
        H, L, P = self.num_heads, self.num_levels, self.num_points
        if int((spatial_shapes[:, 0] * spatial_shapes[:, 1]).sum()) != S:
            raise ValueError(f"spatial_shapes cover {(spatial_shapes[:, 0] * spatial_shapes[:, 1]).sum()} "
                             f"positions, value has {S}")

        value = self.value_proj(value)
        if key_padding_mask is not None:
            value = value.masked_fill(key_padding_mask[..., None], 0.0)
        value = value.view(B, S, H, -1)  # [B, S, heads, d]
        offsets = self.sampling_offsets(query).view(B, Q, H, L, P, 2)
        weights = self.attention_weights(query).view(B, Q, H, L * P).softmax(-1).view(B, Q, H, L, P)
        if reference_points.shape[-1] == 2:  # points: offsets are in cells of each level
            normalizer = torch.stack([spatial_shapes[..., 1], spatial_shapes[..., 0]], -1)  # (w, h)
            locations = reference_points[:, :, None, :, None, :] + offsets / normalizer[None, None, None, :, None, :]
        elif reference_points.shape[-1] == 4:  # boxes (cx, cy, w, h): offsets scale with the box
            locations = (reference_points[:, :, None, :, None, :2]
                         + offsets / P * reference_points[:, :, None, :, None, 2:] * 0.5)
        else:
            raise ValueError(f"reference_points must end in 2 or 4 values, got {reference_points.shape[-1]}")

        if self.kernel_for(value) == "cuda":
            out = MultiScaleDeformableAttnFunction.apply(value, spatial_shapes, level_start_index, locations,
                                                         weights, self.im2col_step)
        else:
            out = deformable_attention_pytorch(value, spatial_shapes, locations, weights)
        out = self.output_proj(out)  # [B, Q, C]
        if not self.batch_first:
            out = out.permute(1, 0, 2)
        return self.dropout(out) + identity
