"""Runner pieces of the image-level evaluations: DeiT's schedule and weight decay as timm builds them, and the two
test loops (k-NN bank, held-out head selection) run by mmengine's Runner on the class sample."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from dense_adapters.registry import MODELS

from dense_adapters.utils import register_all_modules

register_all_modules()
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY_BACKBONE = dict(preset=None, arch="small", img_size=32, patch_size=8, embed_dim=32, depth=3, num_heads=2,
                     num_register_tokens=2, init_cfg=None)


def _cfg(name: str) -> Config:
    return Config.fromfile(osp.join(ROOT, "configs", name))


def test_deit_schedule_follows_timms_cosine_scheduler():
    from mmengine.optim import OptimWrapper
    from mmengine.registry import PARAM_SCHEDULERS
    from timm.scheduler import CosineLRScheduler

    cfg = _cfg("vit-s16-skipat_deit_8xb128-300e_in1k-224x224.py")
    peak = 5e-4 * 1024 / 512  # the stated total batch
    ours = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=peak)
    wrapper = OptimWrapper(ours)
    scheds = [PARAM_SCHEDULERS.build(dict(s, optimizer=wrapper)) for s in copy.deepcopy(cfg.param_scheduler)]
    ref = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=peak)
    timm_sched = CosineLRScheduler(ref, t_initial=300, lr_min=1e-5, warmup_t=5, warmup_lr_init=1e-6)  # DeiT's args
    worst = 0.0
    for epoch in range(cfg.train_cfg.max_epochs):
        timm_sched.step(epoch)
        worst = max(worst, abs(ours.param_groups[0]["lr"] - ref.param_groups[0]["lr"]) / peak)
        for s in scheds:
            s.step()
    assert worst < 4e-4  # 0.034% of the peak lr at worst (the warm-up epochs, cosine and warm-up chained)


def test_deit_weight_decay_groups_equal_timms():
    from mmengine.optim import build_optim_wrapper
    from timm.optim import param_groups_weight_decay

    cfg = _cfg("vit-s16-reg4-skipat_deit_8xb128-300e_in1k-224x224.py")
    model_cfg = cfg.model.to_dict()
    model_cfg["backbone"].update(TINY_BACKBONE, num_register_tokens=4, skip_layers=(1, 2))
    model = MODELS.build(model_cfg)
    ow = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    ours = {id(p): g["weight_decay"] for g in ow.optimizer.param_groups for p in g["params"]}
    tokens = ["backbone.vit.pos_embed", "backbone.vit.cls_token", "backbone.vit.reg_token"]
    groups = param_groups_weight_decay(model, weight_decay=0.05, no_weight_decay_list=tokens)
    ref = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    names = {id(p): n for n, p in model.named_parameters()}
    assert ours.keys() == ref.keys()
    assert {names[i]: ours[i] for i in ours} == {names[i]: ref[i] for i in ref}
    assert ours[id(model.backbone.vit.blocks[1].skip_fn.eca.conv.weight)] == 0.05  # a conv kernel decays


def _runner(cfg: Config, work_dir):
    from mmengine.runner import Runner

    cfg.work_dir = str(work_dir)
    cfg.launcher = "none"
    return Runner.from_cfg(cfg)


def _small_eval_loaders(cfg, root, batch=16, size=32):
    pipeline = [dict(type="LoadImageFromFile", imdecode_backend="pillow", color_type="color_ignore_orientation"),
                dict(type="dense_adapters.TimmClsTransform", input_size=size, crop_pct=0.875, interpolation="bicubic"),
                dict(type="dense_adapters.PackClsInputs")]
    for name in ("train_dataloader", "val_dataloader", "test_dataloader"):
        if name in cfg:
            cfg[name].update(batch_size=batch, num_workers=0, persistent_workers=False)
            cfg[name].dataset.update(data_root=root, pipeline=copy.deepcopy(pipeline))


def test_knn_test_loop_builds_the_bank_and_scores_like_a_direct_computation(class_sample, tmp_path):
    from dense_adapters.evaluation.classification import knn_vote, topk_hits

    cfg = _cfg("regvit-s14-reg4_knn-20nn_in1k-224x224.py")
    cfg.model.backbone = dict(cfg.model.backbone, **TINY_BACKBONE)
    cfg.model.num_classes = 10
    _small_eval_loaders(cfg, class_sample, batch=7)  # 160 bank images: the last batch is short
    torch.manual_seed(0)
    runner = _runner(cfg, tmp_path)
    metrics = runner.test()
    model = runner.model
    assert model.bank.shape == (160, 32)
    # the same numbers computed directly: features of every image, votes, a count
    feats, labels = {}, {}
    for split in ("train", "val"):
        ds = runner.test_dataloader.dataset if split == "val" else None
        if ds is None:
            from dense_adapters.datasets.classification import ImageFolderDataset

            ds = ImageFolderDataset(data_root=class_sample, data_prefix=dict(img_path="train"),
                                    pipeline=cfg.test_dataloader.dataset.pipeline, serialize_data=False)
        items = [ds[i] for i in range(len(ds))]
        batch = model.data_preprocessor(dict(inputs=[it["inputs"] for it in items],
                                             data_samples=[it["data_samples"] for it in items]))
        feats[split] = model.extract_feat(batch["inputs"])
        labels[split] = torch.cat([s.gt_label for s in batch["data_samples"]])
    assert torch.allclose(model.bank, feats["train"], atol=1e-5) and torch.equal(model.bank_labels, labels["train"])
    votes = knn_vote(feats["val"], feats["train"], labels["train"], 10, (10, 20), 0.07)
    for k in (10, 20):
        hits = topk_hits(votes[k], labels["val"], (1, 5)).float().mean(0) * 100
        prefix = "accuracy/" if k == 20 else "accuracy/k10_"
        assert metrics[f"{prefix}top1"] == pytest.approx(float(hits[0]))
        assert metrics[f"{prefix}top5"] == pytest.approx(float(hits[1]))


def test_linear_probe_test_loop_selects_on_the_heldout_split(class_sample, tmp_path):
    cfg = _cfg("regvit-s14-reg4_dinov2-linear_8xb128-12.5k_in1k-224x224.py")
    cfg.model.backbone = dict(cfg.model.backbone, **TINY_BACKBONE)
    cfg.model.update(num_classes=10, n_last_blocks=(1, 2), learning_rates=(1e-3, 0.1))
    _small_eval_loaders(cfg, class_sample)
    for name in ("train_dataloader", "val_dataloader"):
        cfg[name].dataset.heldout_per_class = 4
    torch.manual_seed(0)
    runner = _runner(cfg, tmp_path)
    model = runner.model
    with torch.no_grad():  # distinct heads, so that the choice matters
        for h in model.heads:
            h.weight.normal_(0.0, 0.5)
    model.select_head(2)  # a stale choice stored in a checkpoint is not trusted
    metrics = runner.test()

    from dense_adapters.evaluation.classification import LinearProbeAccuracy

    def direct(loader, use_selected):
        m = LinearProbeAccuracy(topk=(1, 5), use_selected=use_selected)
        for batch in loader:
            m.process(batch, model.test_step(batch))
        return m.evaluate(len(loader.dataset)), m.table

    held, _ = direct(runner.val_dataloader, False)
    test, table = direct(runner.test_dataloader, True)
    assert len(runner.val_dataloader.dataset) == 40 and len(runner.test_dataloader.dataset) == 60
    assert metrics["accuracy/head"] == held["accuracy/best_head"] == int(model.selected_head)
    assert metrics["accuracy/top1"] == pytest.approx(table[metrics["accuracy/head"]]["top1"]) == test["accuracy/top1"]
    assert metrics["accuracy/best_head"] == test["accuracy/best_head"]
