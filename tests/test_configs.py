"""The config layout (docs/protocols.md, "Config layout"): every leaf parses, follows the by-axis layout, says its
recipe in its name, and its model builds; every alias is exactly its target.

Models are built on the meta device: every class, argument and shape is constructed (a typo or a wrong channel
count fails here) without allocating or initialising weights, so the whole set builds in seconds.
"""
import ast
import glob
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from dense_adapters.models.layers.pixel_decoder import has_mmdet
from dense_adapters.registry import MODELS
from dense_adapters.utils import register_all_modules
from dense_adapters.utils import replace_syncbn

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_DIR = osp.join(ROOT, "configs")
ALL = sorted(glob.glob(osp.join(CONFIG_DIR, "*.py")))
BASES = sorted(glob.glob(osp.join(CONFIG_DIR, "_base_", "**", "*.py"), recursive=True))
register_all_modules()

# <model>_<head or protocol>_<gpus>xb<batch per GPU>-<length>_<dataset>-<crop>.py, length = <iterations>k (thousands,
# rounded, or exact with a decimal: 12.5k) or <epochs>e; an evaluation that trains nothing (k-NN) has no
# <gpus>xb<batch>-<length> part
_LENGTH = r"(?:(?P<iters>\d+(?:\.\d+)?)k|(?P<epochs>\d+)e)"
LEAF_NAME = re.compile(r"^(?P<model>[a-z0-9-]+)_(?P<head>[a-z0-9-]+)_(?P<gpus>\d+)xb(?P<batch>\d+)-" + _LENGTH +
                       r"_(?P<data>[a-z0-9-]+)-(?P<h>\d+)x(?P<w>\d+)\.py$")
MODEL_ONLY_NAME = re.compile(r"^(?P<model>[a-z0-9-]+)_(?P<gpus>\d+)xb(?P<batch>\d+)-" + _LENGTH +
                             r"_(?P<data>[a-z0-9-]+)-(?P<h>\d+)x(?P<w>\d+)\.py$")
EVAL_ONLY_NAME = re.compile(r"^(?P<model>[a-z0-9-]+)_(?P<head>[a-z0-9-]+)_(?P<data>[a-z0-9-]+)-(?P<h>\d+)x(?P<w>\d+)"
                            r"\.py$")
CROP_KEYS = ("crop_size", "input_size")  # mmseg's crops; TimmClsTransform's output side


def _assignments(path: str) -> dict:
    """Top-level ``name = value`` statements of a config file (names -> AST value)."""
    tree = ast.parse(open(path).read(), filename=path)
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    out[t.id] = node.value
    return out


def _bases(path: str) -> list:
    value = _assignments(path).get("_base_")
    if value is None:
        return []
    value = ast.literal_eval(value)
    return [value] if isinstance(value, str) else list(value)


def _is_alias(path: str) -> bool:
    names = set(_assignments(path))
    return names == {"_base_"} and len(_bases(path)) == 1 and not _bases(path)[0].startswith("./_base_/")


ALIASES = [p for p in ALL if _is_alias(p)]
LEAVES = [p for p in ALL if p not in ALIASES]


def _no_pretrained(node):
    if isinstance(node, dict):
        if node.get("type") == "Pretrained" or "checkpoint" in node and "type" in node:
            return None
        return {k: _no_pretrained(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return type(node)(_no_pretrained(v) for v in node)
    return node


@pytest.mark.parametrize("path", LEAVES, ids=[osp.basename(p) for p in LEAVES])
def test_leaf_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.get("default_scope") == "mmseg"
    if "Mask2FormerHead" in str(cfg.model) and not has_mmdet():
        pytest.skip("Mask2Former configs need mmdet (pip install -e .[m2f])")
    model_cfg = _no_pretrained(cfg.model.to_dict())
    replace_syncbn(model_cfg)  # SyncBN needs a process group
    # the config's scope, not whatever scope an earlier Runner in this process left current
    with DefaultScope.overwrite_default_scope(cfg.default_scope), torch.device("meta"):
        model = MODELS.build(model_cfg)
    assert sum(p.numel() for p in model.parameters()) > 0
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        if loader in cfg:
            assert "dataset" in cfg[loader]


@pytest.mark.parametrize("path", LEAVES, ids=[osp.basename(p) for p in LEAVES])
def test_leaf_layout_and_name(path):
    """One level of bases, all from configs/_base_/; no custom_imports in a leaf; the name states the recipe and
    the per-GPU batch, iterations and crop in the name are the config's."""
    bases = _bases(path)
    assert bases and all(b.startswith("./_base_/") for b in bases), f"{path}: bases must come from ./_base_/"
    assert "./_base_/default_runtime.py" in bases
    assert "custom_imports" not in _assignments(path), "custom_imports belongs in _base_/default_runtime.py"
    name = osp.basename(path)
    m = LEAF_NAME.match(name) or MODEL_ONLY_NAME.match(name) or EVAL_ONLY_NAME.match(name)
    assert m, f"{name} does not follow <model>_<head>_<gpus>xb<batch>-<iters>k_<dataset>-<crop>.py"
    cfg = Config.fromfile(path)
    if "batch" not in m.groupdict():  # evaluation only: nothing to train, the crop is the test pipeline's
        assert "train_dataloader" not in cfg and "train_cfg" not in cfg, f"{name} trains: name its batch and length"
        loader = cfg.test_dataloader
    else:
        loader = cfg.train_dataloader
        assert loader.batch_size == int(m["batch"])
        if m["epochs"]:
            assert cfg.train_cfg.max_epochs == int(m["epochs"])
        elif "." in m["iters"]:
            assert cfg.train_cfg.max_iters == round(float(m["iters"]) * 1000)
        else:
            assert round(cfg.train_cfg.max_iters / 1000) == int(m["iters"])
    pipeline = loader.dataset.get("pipeline") or loader.dataset.get("dataset", {}).get("pipeline", [])  # RepeatDataset
    crops = [t[k] for t in pipeline for k in CROP_KEYS if k in t]
    assert crops, f"{name}: no crop in the training pipeline"
    crop = crops[0] if isinstance(crops[0], (list, tuple)) else (crops[0], crops[0])
    assert tuple(crop) == (int(m["h"]), int(m["w"]))


@pytest.mark.parametrize("path", BASES, ids=[osp.relpath(p, CONFIG_DIR) for p in BASES])
def test_bases_do_not_inherit(path):
    assert "_base_" not in _assignments(path), f"{path}: a base inherits nothing (one level of _base_)"
    if osp.basename(path) != "default_runtime.py":
        assert "custom_imports" not in _assignments(path)


@pytest.mark.parametrize("path", ALIASES, ids=[osp.basename(p) for p in ALIASES])
def test_alias_is_exactly_its_target(path):
    target = osp.normpath(osp.join(CONFIG_DIR, _bases(path)[0]))
    assert target in LEAVES, f"{path} must name a leaf config"
    assert Config.fromfile(path).to_dict() == Config.fromfile(target).to_dict()


def test_there_are_configs():
    names = {osp.basename(p) for p in ALL}
    readme_names = {"ade20k_regvit.py", "ade20k_vit.py", "ade20k_regvit_upernet.py", "ade20k_regvit_skipat_upernet.py",
                    "ade20k_vit_upernet.py", "ade20k_vit_skipat_upernet.py", "ade20k_regvit_large_fsdp.py",
                    "nyu_regvit_linear.py", "nyu_regvit_linear4.py", "nyu_regvit_dpt.py",
                    "denoise_synthetic_uformer_t.py", "sidd_uformer_t_skipat.py"}
    assert readme_names <= names
