"""Importing the toolkit changes nothing global but the mmcv-lite stand-in; mmseg imports under mmcv-lite, compiled
ops fail with their name; mmengine's message hub round-trips through weights_only checkpoints."""
import json
import os
import subprocess
import sys

import pytest
import torch

from dense_adapters import _mmcv_lite
from dense_adapters.utils import register_all_modules

register_all_modules()

# Records, in a fresh interpreter, every function and method of the mmengine/mmseg modules the toolkit touches,
# and the checkpoint schemes and file backends, before and after importing every part of the toolkit.
SNAPSHOT = r"""
import builtins, importlib, inspect, json, os, sys
MODULES = ["mmengine.dist.utils", "mmengine.fileio.backends.local_backend", "mmengine.fileio.io",
           "mmengine.hooks.checkpoint_hook", "mmengine.logging.history_buffer", "mmengine.runner.checkpoint",
           "mmengine.runner.runner", "mmengine.runner.loops", "mmengine.registry.registry", "torch.serialization"]

def snapshot():
    out = {}
    for name in MODULES:
        mod = importlib.import_module(name)
        for key, val in vars(mod).items():
            if callable(val):
                out[f"{name}.{key}"] = id(val)
            if inspect.isclass(val) and val.__module__ == name:
                for attr, fn in vars(val).items():
                    out[f"{name}.{key}.{attr}"] = id(fn)
    from mmengine.runner.checkpoint import CheckpointLoader
    out["schemes"] = {k: id(v) for k, v in CheckpointLoader._schemes.items()}
    from mmengine.fileio.backends.registry_utils import backends
    out["backends"] = {k: id(v) for k, v in backends.items()}
    out["open"] = id(builtins.open)
    # torch registers its own classes when its submodules load (DTensor, dynamo); anything else would be ours
    out["safe_globals"] = sorted(g for g in map(str, torch.serialization.get_safe_globals()) if "torch." not in g)
    return out

import torch
before = snapshot()
env_before = dict(os.environ)
import dense_adapters.models, dense_adapters.engine, dense_adapters.datasets, dense_adapters.evaluation
import dense_adapters.cli.train, dense_adapters.cli.test, dense_adapters.cli.lost, dense_adapters.cli.benchmark
from dense_adapters.utils import register_all_modules
register_all_modules()
after = snapshot()
changed = sorted(k for k in before if k not in ("schemes", "backends") and before[k] != after.get(k))
changed += [f"scheme {k!r}" for k, v in before["schemes"].items() if after["schemes"].get(k) != v]
changed += [f"backend {k!r}" for k, v in before["backends"].items() if after["backends"].get(k) != v]
added = sorted(set(after["backends"]) - set(before["backends"]))
env = sorted(k for k in set(os.environ) | set(env_before) if os.environ.get(k) != env_before.get(k))
print(json.dumps(dict(changed=changed, added_backends=added, env=env, hf_offline="HF_HUB_OFFLINE" in os.environ,
                      mmcv_ext=type(sys.modules.get("mmcv._ext")).__name__)))
"""


def test_import_replaces_no_mmengine_function_and_sets_no_env():
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}  # the tests set it; users need not
    r = subprocess.run([sys.executable, "-c", SNAPSHOT], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["changed"] == []  # no function, method, checkpoint scheme, file backend or open replaced
    assert res["added_backends"] == ["dense_adapters_atomic"]  # registered by name, used only where selected
    assert res["env"] == [] and not res["hf_offline"]  # HF_HUB_OFFLINE (and everything else) left alone
    if not _mmcv_lite.has_compiled_mmcv():
        assert res["mmcv_ext"] == "MissingExt"  # the one import-time shim


@pytest.mark.skipif(_mmcv_lite.has_compiled_mmcv(), reason="full mmcv installed: the stand-in is not used")
def test_compiled_op_under_mmcv_lite_names_the_op():
    from mmcv.utils import ext_loader

    from dense_adapters.errors import CompiledOpUnavailable

    ext = ext_loader.load_ext("_ext", ["nms"])
    with pytest.raises(CompiledOpUnavailable, match="mmcv op 'nms' needs compiled mmcv"):
        ext.nms(torch.zeros(1, 4), torch.zeros(1), 0.5)


def test_mmseg_models_and_heads_import():
    from mmseg.models.decode_heads import FCNHead, UPerHead  # noqa: F401
    from mmseg.models.segmentors import EncoderDecoder  # noqa: F401


def test_mmengine_message_hub_round_trips_with_weights_only(tmp_path):
    """Through WeightsOnlyStateHook: saved as tensors, loaded with weights_only=True and no allow-list, rebuilt."""
    from mmengine.logging import MessageHub

    from dense_adapters.engine.safe_load import WeightsOnlyStateHook

    hub = MessageHub.get_instance("compat_test")
    for v in (1.0, 2.0, 3.0):
        hub.update_scalar("train/loss", v)
    ckpt = {"message_hub": hub.state_dict(), "meta": {}}
    hook = WeightsOnlyStateHook()
    hook.before_save_checkpoint(None, ckpt)
    torch.save(ckpt, tmp_path / "ckpt.pth")
    loaded = torch.load(tmp_path / "ckpt.pth", weights_only=True)
    hook.after_load_checkpoint(None, loaded)
    buf = loaded["message_hub"]["log_scalars"]["train/loss"]
    assert buf.mean() == 2.0 and buf.statistics("max") == 3.0
