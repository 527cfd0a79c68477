"""The one runner builder: config loading and overrides, device adjustments, mixed precision, the safety nets, the
CPU process group, and the Runner itself. Used by the train and test tools (and any tool that runs a config)."""
from __future__ import annotations

import os
import os.path as osp
from typing import Optional

from ..datasets.checks import dataset_cfgs
from ..engine.checkpoint_io import find_resume_checkpoint, is_complete_checkpoint  # noqa: F401  (for the tools)
from ..errors import UserError
from ..utils import replace_syncbn


# ---- config --------------------------------------------------------------------------------------------------------

def add_runner_args(p) -> None:
    """The options every runner-based tool shares (data root, config overrides, trust, launcher)."""
    from .core import add_cfg_options

    p.add_argument("--data-root", help="dataset root for every dataloader (overrides the config's data_root)")
    add_cfg_options(p)
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow checkpoints that need arbitrary code to unpickle (only for files you trust)")
    p.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    p.add_argument("--local_rank", "--local-rank", type=int, default=0)


def export_local_rank(args) -> None:
    """Export LOCAL_RANK for launchers that pass --local-rank instead of setting it."""
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))


def default_work_dir(config_path: str) -> str:
    """``work_dirs/<config name>`` (also for ``dense_adapters::NAME.py``)."""
    return osp.join("work_dirs", osp.splitext(osp.basename(config_path.split("::")[-1]))[0])


def set_data_root(cfg, data_root: str) -> None:
    """Point every dataset of the config at ``data_root`` (the override the missing-data error suggests)."""
    for _, ds in dataset_cfgs(cfg):
        ds["data_root"] = data_root


def load_config(path: str, cfg_options: Optional[dict] = None, data_root: Optional[str] = None,
                launcher: str = "none"):
    """Read a config (a file or ``dense_adapters::NAME.py``) and apply the command line's overrides (checked:
    :mod:`dense_adapters.cli.cfg_options`)."""
    from .cfg_options import apply_cfg_options
    from .configs import read_config

    cfg = read_config(path)
    apply_cfg_options(cfg, cfg_options)
    if data_root:
        set_data_root(cfg, data_root)
    cfg.launcher = launcher
    return cfg


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


def pretrained_sources(node) -> list[str]:
    """Every ``init_cfg=dict(type='Pretrained', checkpoint=...)`` (and mmseg's ``pretrained=``) inside ``node``."""
    found = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "init_cfg":
                for c in v if isinstance(v, (list, tuple)) else [v]:
                    if isinstance(c, dict) and c.get("type") == "Pretrained" and c.get("checkpoint"):
                        found.append(str(c["checkpoint"]))
            elif k == "pretrained" and isinstance(v, str) and v:
                found.append(v)
            else:
                found += pretrained_sources(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            found += pretrained_sources(v)
    return found


def probe_checkpoints(cfg) -> None:
    """Before anything is built: every checkpoint the run will read (``load_from``/resume, pretrained
    ``init_cfg``) exists, is fetched, and is not empty, truncated or of another kind (one line otherwise)."""
    from .. import engine  # noqa: F401  (mmengine's checkpoint prefixes)
    from ..nn.convert import probe_checkpoint

    for src in ([cfg.load_from] if cfg.get("load_from") else []) + pretrained_sources(cfg.get("model")):
        probe_checkpoint(src)


def adjust_for_device(cfg) -> None:
    """On a machine without CUDA: BN for SyncBN, gloo for nccl, DDP without device_ids, no cudnn benchmark."""
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
    """``--amp``: the config's optim_wrapper in mixed precision (:func:`dense_adapters.engine.amp.
    amp_optim_wrapper_cfg`: AmpOptimWrapper on CUDA, bf16 autocast on the CPU)."""
    import torch

    from ..engine.amp import amp_optim_wrapper_cfg

    cfg.optim_wrapper = amp_optim_wrapper_cfg(cfg.optim_wrapper, "cuda" if torch.cuda.is_available() else "cpu",
                                              dtype)


# ---- the safety nets -----------------------------------------------------------------------------------------------

def _type_name(t) -> str:
    return str(t).rsplit(".", 1)[-1] if isinstance(t, str) else getattr(t, "__name__", str(t))


def add_reliability(cfg, mode: str, trust_pickle: bool = False) -> None:
    """Turn on the toolkit's safety nets for a run; ``mode`` is 'train', 'resume', 'finetune' (``load_from``) or
    'test'.

    * checkpoints are written atomically (AtomicCheckpointHook in place of CheckpointHook) and hold a message hub
      that loads with ``weights_only=True`` (WeightsOnlyStateHook);
    * every loaded checkpoint is checked against the model (CheckpointFitHook: strict, or heads may differ when
      fine-tuning) and read by the safe loader (:func:`build_runner`) unless ``trust_pickle``;
    * loading transforms of the used datasets are wrapped in CheckedLoading (corrupt files, sizes, label range);
    * training stops at a non-finite loss (NanGuardHook), checkpoints hold random states (ExactResumeHook) and
      iteration-based loops resume exactly (ResumableIterBasedTrainLoop);
    * training data augmentation is a function of (seed, pass, sample index) (SeededDataset and the seeded
      samplers), so that a resume is exact with dataloader workers too.
    """
    from ..datasets.checks import add_load_checks
    from ..datasets.seeded import seed_train_data

    if mode not in ("train", "resume", "finetune", "test"):
        raise ValueError(f"unknown mode {mode!r}")
    if trust_pickle and isinstance(cfg.get("model", {}).get("backbone"), dict):
        init = cfg.model.backbone.get("init_cfg")
        if isinstance(init, dict) and init.get("type") == "Pretrained":
            init["trust_pickle"] = True
    ckpt_hook = (cfg.get("default_hooks") or {}).get("checkpoint")
    if isinstance(ckpt_hook, dict) and ckpt_hook.get("type") in ("CheckpointHook", "mmengine.CheckpointHook"):
        ckpt_hook["type"] = "dense_adapters.AtomicCheckpointHook"
    hooks = list(cfg.get("custom_hooks") or [])
    have = {_type_name(h.get("type")) for h in hooks}

    def add(hook: dict) -> None:
        if _type_name(hook["type"]) not in have:
            hooks.append(hook)

    add(dict(type="dense_adapters.WeightsOnlyStateHook"))
    add(dict(type="dense_adapters.ContentHashHook"))
    if cfg.get("runner_type", "Runner") == "Runner":  # FlexibleRunner strategies may hold sharded state dicts
        add(dict(type="dense_adapters.CheckpointFitHook", mode="finetune" if mode == "finetune" else "strict"))
    if mode != "test":
        add(dict(type="dense_adapters.NanGuardHook"))
        add(dict(type="dense_adapters.ExactResumeHook"))
        seed_train_data(cfg)
        tc = cfg.get("train_cfg")
        if tc is not None and (tc.get("type") == "IterBasedTrainLoop"
                               or ("type" not in tc and not tc.get("by_epoch", False))):
            tc.pop("by_epoch", None)
            tc["type"] = "dense_adapters.ResumableIterBasedTrainLoop"
    cfg.custom_hooks = hooks
    loaders = ("test_dataloader",) if mode == "test" else ("train_dataloader", "val_dataloader")
    add_load_checks(cfg, loaders)


# ---- launching -----------------------------------------------------------------------------------------------------

LAUNCHER_ENV = {
    "pytorch": (("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"),
                "start the run with torchrun (tools/dist_train.sh), or drop --launcher for one process"),
    "slurm": (("SLURM_PROCID", "SLURM_NTASKS", "SLURM_NODELIST"),
              "start the run with srun (tools/slurm_train.sh), or drop --launcher for one process"),
    "mpi": (("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "MASTER_ADDR"),
            "start the run with mpirun (and MASTER_ADDR/MASTER_PORT set), or drop --launcher for one process"),
}


def check_launcher_env(launcher: str) -> None:
    """One line when ``--launcher`` is given without the environment its launcher sets (instead of a traceback
    from the process-group initialisation)."""
    if launcher not in LAUNCHER_ENV:
        return
    names, how = LAUNCHER_ENV[launcher]
    missing = [k for k in names if not os.environ.get(k)]
    if missing:
        raise UserError(f"--launcher {launcher} needs the environment its launcher sets ({', '.join(missing)} not "
                        f"set): {how}")


def init_distributed(cfg) -> None:
    """Start the process group on a machine without CUDA (gloo), before the runner is built.

    mmengine's ``pytorch`` and ``slurm`` launchers call ``torch.cuda.set_device`` unconditionally, which breaks
    CPU runs; the Runner skips its own initialisation when a process group already exists. On CUDA machines (and
    for the ``mpi`` launcher) mmengine initialises as usual.
    """
    import datetime

    import torch
    import torch.distributed as torch_dist

    launcher = cfg.get("launcher", "none")
    check_launcher_env(launcher)
    if launcher not in ("pytorch", "slurm") or torch.cuda.is_available() or torch_dist.is_initialized():
        return
    kwargs = dict((cfg.get("env_cfg") or {}).get("dist_cfg") or {})
    backend = kwargs.pop("backend", "gloo")
    kwargs.pop("port", None)
    if kwargs.get("timeout") is not None:
        kwargs["timeout"] = datetime.timedelta(seconds=kwargs["timeout"])
    if launcher == "slurm":  # the environment mmengine's slurm launcher sets up, without device counting
        import subprocess

        port = ((cfg.get("env_cfg") or {}).get("dist_cfg") or {}).get("port")
        os.environ.setdefault("MASTER_PORT", str(port or 29500))
        if "MASTER_ADDR" not in os.environ:
            nodes = os.environ["SLURM_NODELIST"]
            os.environ["MASTER_ADDR"] = subprocess.getoutput(f"scontrol show hostname {nodes} | head -n1")
        os.environ["WORLD_SIZE"] = os.environ["SLURM_NTASKS"]
        os.environ["RANK"] = os.environ["SLURM_PROCID"]
        os.environ["LOCAL_RANK"] = os.environ.get("SLURM_LOCALID", "0")
    torch_dist.init_process_group(backend="gloo" if backend == "nccl" else backend, **kwargs)


def build_runner(cfg, trust_pickle: bool = False):
    """The runner of ``cfg``: :class:`dense_adapters.engine.safe_load.SafeLoadRunner` for plain-Runner configs
    (checkpoints read by the safe loader), else the config's ``runner_type`` (e.g. FlexibleRunner for
    FSDP/DeepSpeed), whose strategies get ``load_from`` as a local copy the safe reader has read."""
    from ..engine.safe_load import SafeLoadRunner

    init_distributed(cfg)
    runner_type = cfg.get("runner_type", "Runner")
    if runner_type in ("Runner", "mmengine.Runner", "dense_adapters.SafeLoadRunner"):
        runner = SafeLoadRunner.from_cfg(cfg)
        runner.trust_pickle = trust_pickle
        return runner
    from mmengine.registry import RUNNERS

    if cfg.get("load_from"):  # the strategies read load_from with mmengine's loader (torch.hub for URLs)
        cfg.load_from = verified_local_copy(cfg.load_from, trust_pickle)
    if trust_pickle:  # the strategies call torch.load without weights_only: torch's default decides
        os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    return RUNNERS.build(cfg)


def verified_local_copy(source: str, trust_pickle: bool = False) -> str:
    """A local path holding ``source`` (a file, URL or mmengine prefix, fetched into the reader's cache) after the
    safe reader has read it: for loaders outside our control (FlexibleRunner's strategies), which then get a local
    file that is known to load weights-only (or was trusted). One line for a refused or damaged checkpoint."""
    from ..engine.safe_load import load_checkpoint_file
    from ..nn.convert import probe_checkpoint

    local = probe_checkpoint(source)
    load_checkpoint_file(source, trust_pickle=trust_pickle)
    return local
