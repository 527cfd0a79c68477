"""Classifiers: linear-probe features and head grid, k-NN, DeiT fine-tuning (loss goes down), batch augmentations
wired as timm's, SkipAt FLOPs of the configs."""
import os.path as osp
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import BaseDataElement

from dense_adapters.engine.classification import HeadGridOptimWrapperConstructor
from dense_adapters.errors import DataError, UserError
from dense_adapters.models.classifiers.image_classifier import ImageClassifier
from dense_adapters.models.classifiers.knn import KNNClassifier
from dense_adapters.models.classifiers.linear_probe import LinearProbeClassifier
from dense_adapters.models.classifiers.preprocessor import ClsDataPreprocessor
from dense_adapters.utils import register_all_modules

register_all_modules()
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = dict(type="dense_adapters.RegViT", arch="small", img_size=32, patch_size=8, embed_dim=32, depth=4,
            num_heads=2, num_register_tokens=3)


def _batch(n=6, hw=(32, 48), classes=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    imgs = [torch.randint(0, 256, (3, *hw), generator=g, dtype=torch.uint8) for _ in range(n)]
    labels = torch.randint(0, classes, (n,), generator=g)
    return dict(inputs=imgs, data_samples=[BaseDataElement(gt_label=y.reshape(1)) for y in labels])


def test_linear_probe_features_equal_forward_blocks():
    model = LinearProbeClassifier(TINY, num_classes=5, n_last_blocks=(1, 3), learning_rates=(0.1,)).eval()
    vit = model.backbone.vit
    torch.nn.init.normal_(vit.reg_token)  # distinct registers, so that averaging them in would show
    x = torch.randn(2, 3, 32, 48)  # a 4 x 6 grid
    feats = model.features(x)
    with torch.no_grad():
        out = [vit.norm(t) for t in vit.forward_blocks(x, [1, 2, 3], ("out",))["out"]]
    P, C = vit.num_prefix_tokens, vit.embed_dim
    assert P == 4
    cls = [t[:, 0] for t in out]
    patch_mean = out[-1][:, P:].mean(1)
    assert torch.allclose(feats[(1, False)], cls[-1])
    assert torch.allclose(feats[(1, True)], torch.cat([cls[-1], patch_mean], -1))
    assert torch.allclose(feats[(3, False)], torch.cat(cls, -1))
    assert torch.allclose(feats[(3, True)], torch.cat(cls + [patch_mean], -1))
    assert out[-1][:, P:].shape[1] == 4 * 6
    assert not torch.allclose(feats[(1, True)][:, C:], out[-1][:, 1:].mean(1), atol=1e-3)  # registers left out
    assert len(model.heads) == 4 and [h.in_features for h in model.heads] == [C, 2 * C, 3 * C, 4 * C]
    assert all(not p.requires_grad for p in model.backbone.parameters())


def _train(model, batches):
    ow = HeadGridOptimWrapperConstructor(dict(type="OptimWrapper",
                                              optimizer=dict(type="SGD", momentum=0.9, weight_decay=0.0)))(model)
    model.train()
    for b in batches:
        model.train_step(b, ow)
    return ow


def test_each_grid_head_equals_a_head_trained_alone():
    torch.manual_seed(0)
    lrs = (0.05, 0.5)
    grid = LinearProbeClassifier(TINY, num_classes=5, n_last_blocks=(1, 2), learning_rates=lrs, head_seed=3)
    backbone_state = grid.backbone.state_dict()
    batches = [_batch(seed=s) for s in range(4)]
    ow = _train(grid, batches)
    assert [g["lr"] for g in ow.optimizer.param_groups] == list(lrs) * 4
    for i in (0, 3, 5, 6):  # a spread of (n, avgpool, lr)
        n, a, lr = grid.specs[i]
        alone = LinearProbeClassifier(TINY, num_classes=5, n_last_blocks=(n,), avgpool=(a,), learning_rates=(lr,),
                                      head_seed=3)
        alone.backbone.load_state_dict(backbone_state)
        _train(alone, batches)
        assert torch.allclose(alone.heads[0].weight, grid.heads[i].weight, atol=1e-6), grid.head_names[i]
        assert torch.allclose(alone.heads[0].bias, grid.heads[i].bias, atol=1e-6)
    assert not torch.allclose(grid.heads[0].weight, grid.heads[1].weight)  # the learning rates did differ


def test_probe_grid_refuses_bad_settings():
    with pytest.raises(UserError, match="frozen"):
        LinearProbeClassifier({**TINY, "frozen": False}, num_classes=5)
    with pytest.raises(UserError, match="1..4"):
        LinearProbeClassifier(TINY, num_classes=5, n_last_blocks=(5,))
    model = LinearProbeClassifier(TINY, num_classes=5, learning_rates=(0.1,))
    with pytest.raises(UserError, match="remove optim_wrapper.optimizer.lr"):
        HeadGridOptimWrapperConstructor(dict(optimizer=dict(type="SGD", lr=0.1)))(model)


def test_knn_classifier_scores_normalised_cls_features():
    model = KNNClassifier(TINY, num_classes=5, ks=(1, 3), main_k=3).eval()
    bank_batch, test_batch = _batch(12, seed=1), _batch(4, seed=2)
    with torch.no_grad():
        x = model.data_preprocessor(bank_batch)["inputs"]
        feats = F.normalize(model.backbone.vit.forward_features(x)["x_norm_clstoken"], dim=1)
    assert torch.allclose(model.extract_feat(x), feats, atol=1e-6)
    labels = torch.cat([s.gt_label for s in bank_batch["data_samples"]])
    model.set_bank(feats, labels)
    out = model.test_step(test_batch)
    with torch.no_grad():
        q = F.normalize(model.backbone.vit.forward_features(model.data_preprocessor(test_batch)["inputs"])
                        ["x_norm_clstoken"], dim=1)
    sims = q @ feats.T
    nearest = labels[sims.argmax(1)]
    assert [int(s.pred_scores["k1"].argmax()) for s in out] == nearest.tolist()  # 1-NN: the most similar label
    assert all(torch.equal(s.pred_score, s.pred_scores["k3"]) for s in out)
    with pytest.raises(UserError, match="trains nothing"):
        model(x, bank_batch["data_samples"], mode="loss")


def test_preprocessor_batch_augments_are_timms():
    from timm.data import Mixup
    from timm.data.random_erasing import RandomErasing

    mix = dict(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1)
    pre = ClsDataPreprocessor(num_classes=5, random_erasing=dict(probability=0.5, mode="pixel"), mixup=mix)
    batch = _batch(4)
    for seed in range(3):
        random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)
        out = pre(batch, training=True)
        random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)
        mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        x = (torch.stack(batch["inputs"]).float() / 255 - mean) / std
        x = RandomErasing(probability=0.5, mode="pixel", device="cpu")(x)
        labels = torch.cat([s.gt_label for s in batch["data_samples"]])
        x, target = Mixup(**mix, num_classes=5)(x, labels)
        assert torch.allclose(out["inputs"], x, atol=1e-6)
        assert torch.allclose(torch.stack([s.gt_score for s in out["data_samples"]]), target)
    evaluated = pre(_batch(4), training=False)["inputs"]
    assert evaluated.shape == (4, 3, 32, 48)
    with pytest.raises(DataError, match="num_classes=5"):
        ClsDataPreprocessor(num_classes=5)(_batch(4, classes=9, seed=3))
    with pytest.raises(UserError, match="even batch"):
        pre(_batch(3), training=True)


def test_fine_tuning_skipat_with_registers_on_the_sample_lowers_the_loss(class_sample):
    from mmengine.optim import OptimWrapper

    from dense_adapters.datasets.classification import ImageFolderDataset

    pipeline = [dict(type="LoadImageFromFile", imdecode_backend="pillow", color_type="color_ignore_orientation"),
                dict(type="dense_adapters.TimmClsTransform", input_size=32, crop_pct=1.0, interpolation="bicubic"),
                dict(type="dense_adapters.PackClsInputs")]
    ds = ImageFolderDataset(data_root=class_sample, data_prefix=dict(img_path="train"), pipeline=pipeline,
                            serialize_data=False)
    items = [ds[i] for i in range(0, len(ds), 8)]  # 2 photos per class
    batch = dict(inputs=[it["inputs"] for it in items], data_samples=[it["data_samples"] for it in items])
    torch.manual_seed(0)
    model = ImageClassifier(dict(TINY, skip_layers=(2, 3), drop_path_rate=0.1), num_classes=10,
                            label_smoothing=0.1)
    assert model.backbone.vit.skip_layers == (2, 3) and model.backbone.vit.num_register_tokens == 3
    ow = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05))
    model.train()
    losses = [float(model.train_step(batch, ow)["loss"]) for _ in range(12)]
    assert np.mean(losses[-3:]) < 0.85 * np.mean(losses[:3]), losses  # label smoothing bounds the floor
    model.eval()
    out = model.val_step(batch)
    assert all(torch.isclose(s.pred_score.sum(), torch.tensor(1.0)) for s in out)


@pytest.mark.parametrize("size", ["t16", "s16", "b16"])
def test_skipat_configs_have_fewer_flops(size):
    from mmengine.config import Config
    from torch.utils.flop_counter import FlopCounterMode

    from dense_adapters.nn import PRESETS, RegViT

    def macs(name):
        bb = Config.fromfile(osp.join(ROOT, "configs", f"vit-{name}_deit_8xb128-300e_in1k-224x224.py")).model.backbone
        kw = {k: v for k, v in bb.items() if k not in ("type", "preset", "init_cfg", "frozen")}
        with torch.device("meta"):  # shapes only: the counter sees every matmul, conv and fused attention
            vit = RegViT(**{**PRESETS[bb.preset], **kw}).eval()
            x = torch.empty(1, 3, 224, 224)
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            vit(x)
        return fc.get_total_flops() / 2, vit  # multiply-adds

    plain, vit = macs(size)
    skip, svit = macs(f"{size}-skipat")
    assert svit.skip_layers == (3, 4, 5, 6, 7, 8) and vit.skip_layers == ()
    N, C = 1 + 14 * 14, vit.embed_dim
    attn = 4 * N * C * C + 2 * N * N * C  # qkv + proj + the two attention products
    phi = 4 * (N - 1) * C * C + 25 * (N - 1) * 2 * C + 3 * C  # Phi's linears, 5x5 depthwise conv, ECA
    assert skip < plain
    assert plain - skip == pytest.approx(6 * (attn - phi), rel=1e-3)
