"""Axial 2-D rotary position embedding (RoPE) as DINOv3 defines it (no weights, any grid size and aspect).

For a head dimension ``D`` (a multiple of 4) and a patch grid ``h x w``:

- patch-centre coordinates per axis, ``(i + 0.5) / n`` mapped to ``[-1, 1]`` (``normalize_coords='separate'``: each
  axis by its own length; ``'max'`` / ``'min'``: both axes by the longer / shorter one);
- ``D / 4`` periods per axis: ``base ** (2k / (D / 2))`` for ``k < D / 4`` (``base`` 100 in DINOv3), or, with
  ``min_period``/``max_period``, the geometric sequence from one to the other;
- angles ``2 pi coord / period``, laid out ``[y freqs | x freqs]`` and tiled twice to ``D``; applied to queries and
  keys of the patch tokens with the rotate-half convention ``x cos + rotate_half(x) sin``. Prefix tokens (cls,
  registers, test-time registers) and any token after the patches stay unrotated.

Training-time coordinate augmentations (DINOv3's): ``shift_coords`` adds one uniform offset in ``[-s, s]`` per axis,
``jitter_coords`` multiplies each axis by a log-uniform factor in ``[1/J, J]``, ``rescale_coords`` both axes by one
log-uniform factor in ``[1/R, R]``; drawn once per forward and shared by all blocks (as timm and transformers do;
Meta's training code draws them again for every block), only in training mode.

Precision: periods are computed in float32 (as timm and transformers do). DINOv3's released ``.pth`` files store
the periods they were trained with, computed in bfloat16; ``periods_dtype='bf16'`` computes them that way
(bf16-rounded values, held in float32), which reproduces Meta's own model exactly on its checkpoints.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from ..errors import UserError

NORMALIZE_COORDS = ("separate", "max", "min")
PERIODS_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def rotate_half(x: Tensor) -> Tensor:
    """``[x1, x2] -> [-x2, x1]`` on the last dimension."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def rope_apply(x: Tensor, sin: Tensor, cos: Tensor) -> Tensor:
    """Rotate ``x`` [..., L, D] by the angles whose sin/cos are [L, D], in the precision of sin/cos, cast back."""
    out = x.to(sin.dtype) * cos + rotate_half(x.to(sin.dtype)) * sin
    return out.to(x.dtype)


class RopePositionEmbedding(nn.Module):
    """sin/cos tables [h*w, head_dim] for a patch grid; see the module docstring for the definition.

    Args:
        head_dim: per-head width D (multiple of 4).
        base: period base (DINOv3: 100); ignored when ``min_period`` and ``max_period`` are both given.
        min_period, max_period: geometric periods from one to the other instead of ``base``.
        normalize_coords: ``'separate'`` (DINOv3's default), ``'max'`` or ``'min'``.
        shift_coords, jitter_coords, rescale_coords: training-time augmentations (None: off).
        periods_dtype: ``'fp32'`` (default) or ``'bf16'`` (DINOv3's stored periods).
    """

    def __init__(self, head_dim: int, *, base: Optional[float] = 100.0, min_period: Optional[float] = None,
                 max_period: Optional[float] = None, normalize_coords: str = "separate",
                 shift_coords: Optional[float] = None, jitter_coords: Optional[float] = None,
                 rescale_coords: Optional[float] = None, periods_dtype: str = "fp32") -> None:
        super().__init__()
        if head_dim % 4:
            raise UserError(f"RoPE needs a head dimension divisible by 4, got {head_dim}")
        if (min_period is None) != (max_period is None):
            raise UserError("give both rope_min_period and rope_max_period, or neither (then rope_base is used)")
        if min_period is None and base is None:
            raise UserError("RoPE needs rope_base or rope_min_period/rope_max_period")
        if normalize_coords not in NORMALIZE_COORDS:
            raise UserError(f"unknown rope normalize_coords {normalize_coords!r}: use one of {NORMALIZE_COORDS}")
        if periods_dtype not in PERIODS_DTYPES:
            raise UserError(f"unknown rope periods_dtype {periods_dtype!r}: use one of {sorted(PERIODS_DTYPES)}")
        for name, v, lo in (("shift", shift_coords, 0.0), ("jitter", jitter_coords, 1.0),
                            ("rescale", rescale_coords, 1.0)):
            if v is not None and not (math.isfinite(v) and v >= lo):
                raise UserError(f"rope_{name}_coords must be a number >= {lo:g}, got {v!r}")
        self.head_dim = head_dim
        self.base, self.min_period, self.max_period = base, min_period, max_period
        self.normalize_coords = normalize_coords
        self.shift_coords, self.jitter_coords, self.rescale_coords = shift_coords, jitter_coords, rescale_coords
        self.periods_dtype = periods_dtype
        self.register_buffer("periods", torch.empty(head_dim // 4), persistent=False)
        self.reset_parameters()

    def compute_periods(self) -> Tensor:
        """The D/4 periods, in float32 (values rounded to bf16 with ``periods_dtype='bf16'``)."""
        n, dt = self.head_dim // 4, PERIODS_DTYPES[self.periods_dtype]
        if self.min_period is not None:
            exponents = torch.linspace(0, 1, n, dtype=dt)
            periods = self.min_period * (self.max_period / self.min_period) ** exponents
        else:
            exponents = 2 * torch.arange(n, dtype=dt) / (self.head_dim // 2)
            periods = self.base ** exponents
        return periods.to(torch.float32)

    def reset_parameters(self) -> None:
        """(Re)compute the periods buffer (also after ``to_empty`` of a model built on the meta device)."""
        with torch.no_grad():
            self.periods.copy_(self.compute_periods().to(self.periods.device))

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        if self.periods.dtype != torch.float32:  # .half()/.bfloat16() of the model: keep the periods in float32
            self.periods = self.compute_periods().to(self.periods.device)
        return self

    def coords(self, hw: tuple[int, int], device=None) -> Tensor:
        """Patch-centre coordinates [h*w, 2] (y, x) in [-1, 1], augmented in training mode."""
        h, w = int(hw[0]), int(hw[1])
        if self.normalize_coords == "separate":
            dh, dw = h, w
        else:
            dh = dw = max(h, w) if self.normalize_coords == "max" else min(h, w)
        ys = torch.arange(0.5, h, device=device, dtype=torch.float32) / dh
        xs = torch.arange(0.5, w, device=device, dtype=torch.float32) / dw
        c = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).flatten(0, 1)  # [h*w, 2]
        c = 2.0 * c - 1.0
        if self.training:
            if self.shift_coords is not None:
                c = c + torch.empty(2, device=device).uniform_(-self.shift_coords, self.shift_coords)
            if self.jitter_coords is not None:
                j = math.log(self.jitter_coords)
                c = c * torch.empty(2, device=device).uniform_(-j, j).exp()
            if self.rescale_coords is not None:
                r = math.log(self.rescale_coords)
                c = c * torch.empty(1, device=device).uniform_(-r, r).exp()
        return c

    def forward(self, hw: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """(sin, cos), each [h*w, head_dim] float32, for an (h, w) patch grid."""
        c = self.coords(hw, device=self.periods.device)
        angles = 2 * math.pi * c[:, :, None] / self.periods[None, None, :]  # [h*w, 2, D/4]
        angles = angles.flatten(1).tile(2)  # [h*w, D]: [y | x | y | x]
        return angles.sin(), angles.cos()

    def extra_repr(self) -> str:
        form = f"base={self.base}" if self.min_period is None else f"periods={self.min_period}..{self.max_period}"
        return f"head_dim={self.head_dim}, {form}, normalize_coords={self.normalize_coords}"
