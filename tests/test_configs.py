"""Every config in configs/ parses and its model builds (random weights, nothing downloaded)."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from dense_adapters.registry import MODELS, register_all_modules
from dense_adapters.runner_utils import replace_syncbn

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(glob.glob(osp.join(ROOT, "configs", "*.py")))
register_all_modules()


def _no_pretrained(node):
    if isinstance(node, dict):
        if node.get("type") == "Pretrained" or "checkpoint" in node and "type" in node:
            return None
        return {k: _no_pretrained(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return type(node)(_no_pretrained(v) for v in node)
    return node


@pytest.mark.parametrize("path", CONFIGS, ids=[osp.basename(p) for p in CONFIGS])
def test_config_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.get("default_scope") == "mmseg"
    model_cfg = _no_pretrained(cfg.model.to_dict())
    replace_syncbn(model_cfg)  # SyncBN needs a process group
    model = MODELS.build(model_cfg)
    assert sum(p.numel() for p in model.parameters()) > 0
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        if loader in cfg:
            assert "dataset" in cfg[loader]


def test_there_are_configs():
    names = {osp.basename(p) for p in CONFIGS}
    assert {"ade20k_regvit.py", "ade20k_regvit_upernet.py", "ade20k_regvit_skipat_upernet.py",
            "ade20k_vit.py"} <= names
