"""What tools/train.py and tools/test.py share: config preparation, CPU adjustments, data checks, one-line errors."""
from __future__ import annotations

import glob
import os
import os.path as osp
import re
import sys
import zipfile
from typing import Callable, Optional

from . import compat

compat.apply()


from .errors import DenseAdaptersError, UserError  # noqa: E402,F401  (UserError re-exported for the tools)


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


def replace_syncbn(node) -> None:
    """Turn every SyncBN of a config (dict/list tree) into BN, in place."""
    if isinstance(node, dict):
        if node.get("type") == "SyncBN":
            node["type"] = "BN"
        for v in node.values():
            replace_syncbn(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            replace_syncbn(v)


def adjust_for_device(cfg) -> None:
    """On a machine without CUDA: BN for SyncBN, gloo for nccl, DDP without device_ids, no pinned workers."""
    import torch

    if torch.cuda.is_available():
        return
    replace_syncbn(cfg._cfg_dict if hasattr(cfg, "_cfg_dict") else cfg)
    env = cfg.setdefault("env_cfg", {})
    env.setdefault("dist_cfg", {})["backend"] = "gloo"
    env["cudnn_benchmark"] = False
    if (cfg.get("launcher", "none") != "none" and not cfg.get("model_wrapper_cfg")
            and cfg.get("runner_type", "Runner") == "Runner"):
        cfg["model_wrapper_cfg"] = dict(type="MMDistributedDataParallel", device_ids=None)


def enable_amp(cfg, dtype: Optional[str] = None) -> None:
    """Mixed precision: mmengine's AmpOptimWrapper on CUDA (fp16 with dynamic loss scaling, or bf16); on the CPU,
    where mmengine refuses AMP, bf16 autocast through ``dense_adapters.AutocastOptimWrapper``."""
    import torch

    ow = cfg.optim_wrapper
    kind = ow.get("type", "OptimWrapper")
    if kind in ("AmpOptimWrapper", "dense_adapters.AutocastOptimWrapper"):
        return
    if kind != "OptimWrapper":
        raise UserError(f"--amp works with OptimWrapper, this config uses {kind}: set mixed precision in the config")
    if not torch.cuda.is_available():
        if dtype not in (None, "bfloat16"):
            raise UserError("--amp on the CPU runs bf16 autocast: use --amp-dtype bfloat16 (fp16 needs a CUDA GPU)")
        ow.update(type="dense_adapters.AutocastOptimWrapper", device_type="cpu")
        return
    ow.update(type="AmpOptimWrapper", dtype=dtype or "float16")
    if ow["dtype"] == "float16":
        ow["loss_scale"] = "dynamic"


def add_runner_args(p) -> None:
    """The options tools/train.py and tools/test.py share (data root, config overrides, trust, launcher)."""
    from mmengine.config import DictAction

    p.add_argument("--data-root", help="dataset root for every dataloader (overrides the config's data_root)")
    p.add_argument("--cfg-options", nargs="+", action=DictAction,
                   help="override config entries, e.g. train_cfg.max_iters=100 model.backbone.init_cfg=None")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow checkpoints that need arbitrary code to unpickle (only for files you trust)")
    p.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    p.add_argument("--local_rank", "--local-rank", type=int, default=0)


def parse_runner_args(p):
    """Parse, and export LOCAL_RANK for launchers that pass --local-rank instead of setting it."""
    args = p.parse_args()
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    return args


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


# ---- reliability: hooks, loop, data checks, resume -----------------------------------------------------------------

def _type_name(t) -> str:
    return str(t).rsplit(".", 1)[-1] if isinstance(t, str) else getattr(t, "__name__", str(t))


def add_reliability(cfg, mode: str, trust_pickle: bool = False) -> None:
    """Turn on the toolkit's safety nets for a run; ``mode`` is 'train', 'resume', 'finetune' (``load_from``) or
    'test'.

    * every loaded checkpoint is checked against the model (CheckpointFitHook: strict, or heads may differ when
      fine-tuning) and loaded with ``weights_only=True`` unless ``trust_pickle``;
    * loading transforms of the used datasets are wrapped in CheckedLoading (corrupt files, sizes, label range);
    * training stops at a non-finite loss (NanGuardHook), checkpoints hold random states (ExactResumeHook) and
      iteration-based loops resume exactly (ResumableIterBasedTrainLoop).
    """
    from .datasets.checks import add_load_checks

    if mode not in ("train", "resume", "finetune", "test"):
        raise ValueError(f"unknown mode {mode!r}")
    compat.set_trust_pickle(trust_pickle)
    if trust_pickle and isinstance(cfg.get("model", {}).get("backbone"), dict):
        init = cfg.model.backbone.get("init_cfg")
        if isinstance(init, dict) and init.get("type") == "Pretrained":
            init["trust_pickle"] = True
    hooks = list(cfg.get("custom_hooks") or [])
    have = {_type_name(h.get("type")) for h in hooks}

    def add(hook: dict) -> None:
        if _type_name(hook["type"]) not in have:
            hooks.append(hook)

    if cfg.get("runner_type", "Runner") == "Runner":  # FlexibleRunner strategies may hold sharded state dicts
        add(dict(type="dense_adapters.CheckpointFitHook", mode="finetune" if mode == "finetune" else "strict"))
    if mode != "test":
        add(dict(type="dense_adapters.NanGuardHook"))
        add(dict(type="dense_adapters.ExactResumeHook"))
        tc = cfg.get("train_cfg")
        if tc is not None and (tc.get("type") == "IterBasedTrainLoop"
                               or ("type" not in tc and not tc.get("by_epoch", False))):
            tc.pop("by_epoch", None)
            tc["type"] = "dense_adapters.ResumableIterBasedTrainLoop"
    cfg.custom_hooks = hooks
    loaders = ("test_dataloader",) if mode == "test" else ("train_dataloader", "val_dataloader")
    add_load_checks(cfg, loaders)


def is_complete_checkpoint(path: str) -> bool:
    """True for a readable torch zip checkpoint (a truncated file lacks the zip's central directory)."""
    try:
        return osp.isfile(path) and zipfile.is_zipfile(path)
    except OSError:
        return False


def find_resume_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint to resume from: ``last_checkpoint``'s target when complete, else the newest complete
    ``iter_*.pth`` / ``epoch_*.pth`` in ``work_dir``; None when there is none."""
    pointer = osp.join(work_dir, "last_checkpoint")
    if osp.isfile(pointer):
        with open(pointer) as f:
            target = f.read().strip()
        if target and is_complete_checkpoint(target):
            return target
    found = []
    for path in glob.glob(osp.join(work_dir, "*.pth")):
        m = re.fullmatch(r"(iter|epoch)_(\d+)\.pth", osp.basename(path))
        if m and is_complete_checkpoint(path):
            found.append((int(m.group(2)), path))
    return max(found)[1] if found else None


CHECKER_FILES = (osp.join("dense_adapters", "nn", "convert.py"),)  # their ValueError/RuntimeError are user errors


def _innermost_file(e: BaseException) -> str:
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename if tb is not None else ""


def user_message(e: BaseException) -> Optional[str]:
    """The one-line message for an error caused by the user's input, or None for a bug (which keeps its traceback).

    DataLoader workers re-raise errors with the worker's traceback in the text: the last line is the message.
    """
    if isinstance(e, (DenseAdaptersError, FileNotFoundError)):
        text = str(e)
    elif isinstance(e, (ValueError, RuntimeError)) and _innermost_file(e).endswith(CHECKER_FILES):
        text = str(e)
    else:
        return None
    if "Original Traceback" in text:
        last = [line for line in text.splitlines() if line.strip()][-1]
        head, _, rest = last.partition(": ")
        text = rest if rest and re.fullmatch(r"[\w.]+", head) else last
    return " ".join(text.split("\n")[0].split()) if "\n" in text else text


def run_cli(main: Callable[[], None]) -> None:
    """Run a tool's main; user errors and missing files end in one line on stderr and exit code 2."""
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:
        msg = user_message(e)
        if msg is None:
            raise
        print(f"error: {msg}", file=sys.stderr)
        sys.exit(2)
