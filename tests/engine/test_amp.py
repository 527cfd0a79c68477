"""The one mixed-precision path: --amp's optim_wrapper rewrite per device and the autocast the benchmark uses."""
import pytest
import torch

from dense_adapters.engine.amp import amp_optim_wrapper_cfg, autocast
from dense_adapters.errors import UserError

OW = dict(type="OptimWrapper", optimizer=dict(type="AdamW", lr=1e-4), clip_grad=None)


def test_optim_wrapper_per_device():
    assert amp_optim_wrapper_cfg(OW, "cuda") == dict(OW, type="AmpOptimWrapper", dtype="float16",
                                                     loss_scale="dynamic")
    assert amp_optim_wrapper_cfg(OW, "cuda", "bfloat16") == dict(OW, type="AmpOptimWrapper", dtype="bfloat16")
    assert amp_optim_wrapper_cfg(OW, "cpu") == dict(OW, type="dense_adapters.AutocastOptimWrapper",
                                                    device_type="cpu")
    assert amp_optim_wrapper_cfg(OW, "cpu", "bf16") == amp_optim_wrapper_cfg(OW, "cpu")
    done = amp_optim_wrapper_cfg(OW, "cpu")
    assert amp_optim_wrapper_cfg(done, "cpu") == done  # already mixed precision: unchanged
    assert OW["type"] == "OptimWrapper"  # the input is not modified
    with pytest.raises(UserError, match=r"use --amp-dtype bfloat16 \(fp16 needs a CUDA GPU\)"):
        amp_optim_wrapper_cfg(OW, "cpu", "float16")
    with pytest.raises(UserError, match="--amp works with OptimWrapper, this config uses OptimWrapperDict"):
        amp_optim_wrapper_cfg(dict(type="OptimWrapperDict"), "cuda")


def test_autocast_names():
    x = torch.randn(2, 4)
    w = torch.randn(4, 4)
    with autocast("cpu", "bf16"):
        assert (x @ w).dtype == torch.bfloat16
    with autocast("cpu", "bfloat16"):
        assert (x @ w).dtype == torch.bfloat16
    with autocast("cpu", "fp32"):
        assert (x @ w).dtype == torch.float32
    with pytest.raises(UserError, match="unknown dtype 'fp8'"):
        autocast("cpu", "fp8")
