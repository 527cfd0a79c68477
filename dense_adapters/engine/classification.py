"""Runner pieces of the image-level evaluations: per-head learning rates for the linear-probe grid, and test loops
that make a pass over another split first (the k-NN bank; the held-out split that picks the probe's head).

Both loops build that extra dataloader from a dataloader of the config (``select_on='val_dataloader'``, or the
test dataloader with ``bank_dataset`` fields replaced), so that ``--data-root`` and ``--cfg-options`` reach it.
"""
from __future__ import annotations

import copy
from typing import Optional

import torch
from mmengine.dist import all_gather, get_world_size
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS, OPTIMIZERS
from mmengine.runner import TestLoop
from mmengine.runner.amp import autocast

from ..errors import UserError
from ..registry import OPTIM_WRAPPER_CONSTRUCTORS
from .checkpoint_resume import LOOPS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class HeadGridOptimWrapperConstructor:
    """``optim_wrapper=dict(constructor='dense_adapters.HeadGridOptimWrapperConstructor', optimizer=dict(type='SGD',
    momentum=0.9, weight_decay=0))``: one parameter group per head of a :class:`dense_adapters.
    LinearProbeClassifier`, each with its own learning rate (``model.learning_rates``), as DINOv2's
    ``setup_linear_classifiers``. ``auto_scale_lr=dict(enable=True, base_batch_size=256)`` then multiplies every
    group by total batch / 256 (DINOv2's ``scale_lr``). The optimizer config must not set ``lr``."""

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None) -> None:
        if paramwise_cfg:
            raise UserError("HeadGridOptimWrapperConstructor takes no paramwise_cfg: the heads' learning rates come "
                            "from model.learning_rates")
        self.optim_wrapper_cfg = copy.deepcopy(dict(optim_wrapper_cfg))
        self.optimizer_cfg = self.optim_wrapper_cfg.pop("optimizer", None)
        if not self.optimizer_cfg or "type" not in self.optimizer_cfg:
            raise UserError("optim_wrapper.optimizer=dict(type='SGD', ...) is missing")
        if "lr" in self.optimizer_cfg:
            raise UserError("the linear probe's learning rates are model.learning_rates (one per head): remove "
                            "optim_wrapper.optimizer.lr")

    def __call__(self, model) -> OptimWrapper:
        model = model.module if is_model_wrapper(model) else model
        if not hasattr(model, "optim_param_groups"):
            raise UserError(f"{type(model).__name__} has no head grid: HeadGridOptimWrapperConstructor is for "
                            "dense_adapters.LinearProbeClassifier")
        groups = model.optim_param_groups()
        optimizer_cfg = dict(copy.deepcopy(self.optimizer_cfg), params=groups, lr=max(g["lr"] for g in groups))
        optimizer = OPTIMIZERS.build(optimizer_cfg)
        wrapper_cfg = dict(self.optim_wrapper_cfg)
        wrapper_cfg.setdefault("type", "OptimWrapper")
        return OPTIM_WRAPPERS.build(wrapper_cfg, default_args=dict(optimizer=optimizer))


def _merge(into: dict, new: dict) -> dict:
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict) and not v.pop("_delete_", False):
            _merge(into[k], v)
        else:
            into[k] = v
    return into


def derived_dataloader(runner, source: str, dataset_overrides: Optional[dict] = None):
    """Build ``runner.cfg[source]`` (a dataloader config) with ``dataset_overrides`` merged into its dataset and
    the data checks of the tools applied to its pipeline."""
    cfg = runner.cfg.get(source)
    if not cfg or "dataset" not in cfg:
        raise UserError(f"this test loop reads {source} from the config, which has none")
    cfg = copy.deepcopy(cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg))
    _merge(cfg["dataset"], copy.deepcopy(dataset_overrides or {}))
    pipeline = cfg["dataset"].get("pipeline")
    if isinstance(pipeline, list):
        from ..datasets.checks import wrap_pipeline

        cfg["dataset"]["pipeline"] = wrap_pipeline(pipeline, None, 255)
    return runner.build_dataloader(cfg, seed=runner.seed)


def gather_rows(*tensors: torch.Tensor) -> list[torch.Tensor]:
    """Concatenate each tensor's rows over all processes (rank order; rows may differ in number per rank)."""
    if get_world_size() == 1:
        return list(tensors)
    n = torch.tensor([tensors[0].shape[0]], device=tensors[0].device)
    sizes = [int(s) for s in all_gather(n)]
    out = []
    for t in tensors:
        pad = t.new_zeros((max(sizes) - t.shape[0], *t.shape[1:]))
        parts = all_gather(torch.cat([t, pad]))
        out.append(torch.cat([p[:s] for p, s in zip(parts, sizes)]))
    return out


def _unwrap(model):
    return model.module if is_model_wrapper(model) else model


@LOOPS.register_module()
class KNNTestLoop(TestLoop):
    """``test_cfg=dict(type='dense_adapters.KNNTestLoop', bank_dataset=dict(data_prefix=dict(img_path='train')))``:
    first the features of the bank split (the test dataloader with ``bank_dataset`` fields replaced; every
    process extracts its shard, the shards are gathered and de-duplicated by sample index), then the usual test
    loop, in which :class:`dense_adapters.KNNClassifier` scores each test image against the bank.

    Run without a checkpoint (``tools/test.py CONFIG``), the model's own ``init_cfg`` weights are loaded first
    (e.g. a pretrained backbone).
    """

    def __init__(self, runner, dataloader, evaluator, bank_dataset: Optional[dict] = None,
                 bank_source: str = "test_dataloader", log_interval: int = 50, fp16: bool = False) -> None:
        super().__init__(runner, dataloader, evaluator, fp16=fp16)
        self.bank_dataset, self.bank_source, self.log_interval = bank_dataset or {}, bank_source, log_interval

    @torch.no_grad()
    def build_bank(self) -> None:
        model = _unwrap(self.runner.model)
        if not hasattr(model, "set_bank"):
            raise UserError(f"KNNTestLoop needs dense_adapters.KNNClassifier, the model is {type(model).__name__}")
        loader = derived_dataloader(self.runner, self.bank_source, self.bank_dataset)
        model.eval()
        feats, labels, index = [], [], []
        for i, batch in enumerate(loader):
            with autocast(enabled=self.fp16):
                data = model.data_preprocessor(batch, False)
                feats.append(model.extract_feat(data["inputs"]).float())
            samples = data["data_samples"]
            labels.append(torch.cat([s.gt_label.reshape(-1)[:1] for s in samples]).to(feats[-1].device))
            index.append(torch.tensor([s.metainfo.get("sample_idx", -1) for s in samples], device=feats[-1].device))
            if self.log_interval and (i + 1) % self.log_interval == 0:
                print_log(f"k-NN bank: {i + 1}/{len(loader)} batches", logger="current")
        f, lab, idx = gather_rows(torch.cat(feats), torch.cat(labels), torch.cat(index))
        if (idx >= 0).all():  # drop the sampler's padding (repeated samples) and restore the dataset order
            order = torch.argsort(idx, stable=True)
            f, lab, idx = f[order], lab[order], idx[order]
            keep = torch.ones_like(idx, dtype=torch.bool)
            keep[1:] = idx[1:] != idx[:-1]
            f, lab = f[keep], lab[keep]
        model.set_bank(f, lab)
        print_log(f"k-NN bank: {f.shape[0]} features of dimension {f.shape[1]} ({len(loader.dataset)} images: "
                  f"{self.bank_source} with {self.bank_dataset})", logger="current")

    def run(self) -> dict:
        model = _unwrap(self.runner.model)
        if self.runner.cfg.get("load_from") is None and not getattr(model, "is_init", False):
            model.init_weights()  # Runner.test() loads checkpoints only; without one, the configured weights
        self.build_bank()
        return super().run()


@LOOPS.register_module()
class LinearProbeTestLoop(TestLoop):
    """``test_cfg=dict(type='dense_adapters.LinearProbeTestLoop', select_on='val_dataloader')``: first every head
    of a :class:`dense_adapters.LinearProbeClassifier` is scored on the held-out split of ``select_on`` and the best
    top-1 head is selected (the checkpoint's own choice is not trusted: it may predate the last validation), then
    the test split is scored with :class:`dense_adapters.LinearProbeAccuracy` (``use_selected=True``).
    ``select_on=None`` skips the selection (the test split then reports its own best head, DINOv2's protocol when
    the validation and test sets are one).
    """

    def __init__(self, runner, dataloader, evaluator, select_on: Optional[str] = "val_dataloader",
                 fp16: bool = False) -> None:
        super().__init__(runner, dataloader, evaluator, fp16=fp16)
        self.select_on = select_on

    @torch.no_grad()
    def select(self) -> int:
        from ..evaluation.classification import LinearProbeAccuracy

        model = _unwrap(self.runner.model)
        if not hasattr(model, "select_head"):
            raise UserError(f"LinearProbeTestLoop needs dense_adapters.LinearProbeClassifier, the model is "
                            f"{type(model).__name__}")
        loader = derived_dataloader(self.runner, self.select_on)
        metric = LinearProbeAccuracy(topk=(1,), log_heads=3, prefix="heldout")
        self.runner.model.eval()
        model.select_head(-1)
        for batch in loader:
            with autocast(enabled=self.fp16):
                outputs = self.runner.model.test_step(batch)
            metric.process(batch, outputs)
        res = metric.evaluate(len(loader.dataset))
        best = int(res["heldout/best_head"])
        model.select_head(best)
        print_log(f"linear probe: head {model.head_names[best]} selected on {self.select_on} "
                  f"({len(loader.dataset)} images, top-1 {res['heldout/best_top1']:.2f})", logger="current")
        return best

    def run(self) -> dict:
        if self.select_on:
            self.select()
        return super().run()
