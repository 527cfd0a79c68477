"""What tools/train.py and tools/test.py share: config preparation, CPU adjustments, data checks, one-line errors."""
from __future__ import annotations

import os
import os.path as osp
import sys
from typing import Callable, Optional

from . import compat

compat.apply()


class UserError(Exception):
    """A mistake in the user's input; the tools print its message on one line, without a traceback."""


def dataset_cfgs(cfg) -> list[tuple[str, dict]]:
    """(name, dataset cfg) of every dataloader in ``cfg``, unwrapping RepeatDataset/ConcatDataset."""
    out = []
    for name in ("train_dataloader", "val_dataloader", "test_dataloader"):
        loader = cfg.get(name)
        if not loader or "dataset" not in loader:
            continue
        stack = [loader["dataset"]]
        while stack:
            ds = stack.pop()
            if "dataset" in ds:
                stack.append(ds["dataset"])
            elif "datasets" in ds:
                stack.extend(ds["datasets"])
            else:
                out.append((name, ds))
    return out


def set_data_root(cfg, data_root: str) -> None:
    """Point every dataset of the config at ``data_root`` (the override the missing-data error suggests)."""
    for _, ds in dataset_cfgs(cfg):
        ds["data_root"] = data_root


def check_data(cfg, loaders: tuple[str, ...]) -> None:
    """Raise a one-line :class:`UserError` when a dataset's folders or files are missing."""
    for name, ds in dataset_cfgs(cfg):
        if name not in loaders:
            continue
        root = ds.get("data_root") or ""
        paths = [root] if root else []
        for key, sub in (ds.get("data_prefix") or {}).items():
            if sub and not osp.isabs(sub):
                paths.append(osp.join(root, sub))
            elif sub:
                paths.append(sub)
        if ds.get("ann_file"):
            ann = ds["ann_file"]
            paths.append(ann if osp.isabs(ann) else osp.join(root, ann))
        for p in paths:
            if p and not osp.exists(p):
                raise UserError(
                    f"dataset not found: {name} looks for '{p}' ({ds.get('type')}); put the data there or "
                    f"pass --data-root DIR (or --cfg-options {name}.dataset.data_root=DIR)")


def _replace_syncbn(node) -> None:
    if isinstance(node, dict):
        if node.get("type") == "SyncBN":
            node["type"] = "BN"
        for v in node.values():
            _replace_syncbn(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            _replace_syncbn(v)


def adjust_for_device(cfg) -> None:
    """On a machine without CUDA: BN for SyncBN, gloo for nccl, DDP without device_ids, no pinned workers."""
    import torch

    if torch.cuda.is_available():
        return
    _replace_syncbn(cfg._cfg_dict if hasattr(cfg, "_cfg_dict") else cfg)
    env = cfg.setdefault("env_cfg", {})
    env.setdefault("dist_cfg", {})["backend"] = "gloo"
    env["cudnn_benchmark"] = False
    if cfg.get("launcher", "none") != "none" and not cfg.get("model_wrapper_cfg"):
        cfg["model_wrapper_cfg"] = dict(type="MMDistributedDataParallel", device_ids=None)


def enable_amp(cfg, dtype: str = "float16") -> None:
    """Switch the optimizer wrapper to mmengine's AmpOptimWrapper (CUDA only: mmengine refuses the CPU)."""
    import torch

    if not torch.cuda.is_available():
        raise UserError("--amp needs a CUDA GPU (mmengine's AmpOptimWrapper refuses the CPU): drop --amp here")
    ow = cfg.optim_wrapper
    if ow.get("type", "OptimWrapper") == "AmpOptimWrapper":
        return
    if ow.get("type", "OptimWrapper") != "OptimWrapper":
        raise UserError(f"--amp works with OptimWrapper, this config uses {ow.get('type')}: set AMP in the config")
    ow["type"] = "AmpOptimWrapper"
    ow["dtype"] = dtype
    if dtype == "float16":
        ow["loss_scale"] = "dynamic"


def default_work_dir(config_path: str) -> str:
    return osp.join("work_dirs", osp.splitext(osp.basename(config_path))[0])


def load_config(path: str, cfg_options: Optional[dict], data_root: Optional[str], launcher: str):
    """Read a config and apply the command line's overrides."""
    from mmengine.config import Config

    if not osp.isfile(path):
        raise UserError(f"config not found: {path}: give the path of a file in configs/")
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if data_root:
        set_data_root(cfg, data_root)
    cfg.launcher = launcher
    return cfg


def run_cli(main: Callable[[], None]) -> None:
    """Run a tool's main; user errors and missing files end in one line on stderr and exit code 2."""
    try:
        main()
    except (UserError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
