"""The one mixed-precision path of the toolkit: what ``--amp`` trains with and what the benchmark times.

* :func:`autocast`: the autocast context for a dtype name (``'fp32'``: none; ``'bf16'``/``'bfloat16'``,
  ``'fp16'``/``'float16'``) on a device type.
* :func:`amp_optim_wrapper_cfg`: an ``optim_wrapper`` config turned into its mixed-precision form: mmengine's
  ``AmpOptimWrapper`` on CUDA (fp16 with dynamic loss scaling, or bf16); on the CPU, where mmengine refuses AMP,
  :class:`AutocastOptimWrapper` with bf16 autocast.
"""
from __future__ import annotations

import contextlib
from contextlib import contextmanager
from typing import Optional

import torch
from mmengine.optim import OptimWrapper

from ..errors import UserError
from ..registry import OPTIM_WRAPPERS

DTYPES = {"fp32": None, "float32": None, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
          "fp16": torch.float16, "float16": torch.float16}


def autocast(device_type: str, dtype: str = "bf16"):
    """``torch.autocast(device_type, dtype)``, or a null context for ``'fp32'``."""
    if dtype not in DTYPES:
        raise UserError(f"unknown dtype {dtype!r}: use one of {sorted(DTYPES)}")
    if DTYPES[dtype] is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=DTYPES[dtype])


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """An ``OptimWrapper`` whose forward (``optim_context``) runs under :func:`autocast` (bf16 by default).

    Backward and the optimizer step stay outside autocast and in fp32 parameters; bf16 needs no loss scaling.
    """

    def __init__(self, device_type: str = "cpu", dtype: str = "bf16", **kwargs) -> None:
        super().__init__(**kwargs)
        self.device_type, self.dtype = device_type, dtype

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        with super().optim_context(model), autocast(self.device_type, self.dtype):
            yield


def amp_optim_wrapper_cfg(optim_wrapper: dict, device_type: str, dtype: Optional[str] = None) -> dict:
    """``optim_wrapper`` (a config dict) in its mixed-precision form for ``device_type`` ('cuda', 'cpu', ...).

    ``dtype``: 'float16' (CUDA default) or 'bfloat16' (the only choice on the CPU). A config that already uses
    mixed precision is returned unchanged; other wrapper types are refused.
    """
    cfg = dict(optim_wrapper)
    kind = cfg.get("type", "OptimWrapper")
    if kind in ("AmpOptimWrapper", "dense_adapters.AutocastOptimWrapper"):
        return cfg
    if kind != "OptimWrapper":
        raise UserError(f"--amp works with OptimWrapper, this config uses {kind}: set mixed precision in the config")
    if device_type != "cuda":
        if dtype not in (None, "bfloat16", "bf16"):
            raise UserError("--amp on the CPU runs bf16 autocast: use --amp-dtype bfloat16 (fp16 needs a CUDA GPU)")
        cfg.update(type="dense_adapters.AutocastOptimWrapper", device_type=device_type)
        return cfg
    dtype = {"bf16": "bfloat16", "fp16": "float16"}.get(dtype, dtype) or "float16"
    cfg.update(type="AmpOptimWrapper", dtype=dtype)
    if dtype == "float16":
        cfg["loss_scale"] = "dynamic"
    return cfg
