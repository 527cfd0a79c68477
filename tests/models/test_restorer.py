"""Restorer (mmengine BaseModel): modes, padding/cropping, the ViT backbone + DenoiseHead path, and a short
CPU training run through mmengine's Runner on real photos with synthetic noise."""
import os

import numpy as np
import pytest
import torch
from mmengine.structures import BaseDataElement

import dense_adapters.models  # noqa: F401  (registers)
from dense_adapters.registry import MODELS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY_UFORMER = dict(type="dense_adapters.Uformer", embed_dim=16, depths=(1, 1, 1, 1, 1), win_size=4,
                    drop_path_rate=0.0)


@pytest.fixture(autouse=True)
def mmseg_scope():
    """Configs name our classes 'dense_adapters.X', resolved from mmseg's scope as in the Runner."""
    from mmengine.registry import DefaultScope

    with DefaultScope.overwrite_default_scope("mmseg"):
        yield


@pytest.fixture(scope="module")
def denoise_sample(tmp_path_factory) -> str:
    from dense_adapters.datasets.samples.denoise import make_denoise_sample

    return make_denoise_sample(str(tmp_path_factory.mktemp("denoise")), max_side=96)


def batch(sizes, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = [torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8) for h, w in sizes]
    samples = []
    for x in inputs:
        s = BaseDataElement(metainfo=dict(img_shape=tuple(x.shape[1:])))
        s.gt_img = x.clone()
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def test_modes_and_cropping_back():
    model = MODELS.build(dict(type="dense_adapters.Restorer", generator=TINY_UFORMER))
    data = model.data_preprocessor(batch([(21, 30), (25, 17)]))  # padded to 25 x 30
    assert data["inputs"].shape == (2, 3, 25, 30) and 0 <= data["inputs"].min() and data["inputs"].max() <= 1
    out = model(**data, mode="predict")
    assert [tuple(s.pred_img.shape) for s in out] == [(3, 21, 30), (3, 25, 17)]
    assert all(0 <= s.pred_img.min() and s.pred_img.max() <= 1 for s in out)
    assert model(data["inputs"], mode="tensor").shape == (2, 3, 25, 30)
    data = model.data_preprocessor(batch([(24, 24)] * 2), training=True)
    losses = model(**data, mode="loss")
    assert losses["loss"].ndim == 0 and losses["loss"] > 0
    with pytest.raises(ValueError, match="unknown mode"):
        model(**data, mode="bogus")


def test_errors():
    with pytest.raises(ValueError, match="either generator"):
        MODELS.build(dict(type="dense_adapters.Restorer"))
    model = MODELS.build(dict(type="dense_adapters.Restorer", generator=TINY_UFORMER))
    data = model.data_preprocessor(batch([(24, 24)]))
    data["data_samples"][0].gt_img = torch.zeros(3, 20, 24, dtype=torch.uint8)
    with pytest.raises(ValueError, match="PairedRandomCrop"):
        model(**data, mode="loss")
    with pytest.raises(ValueError, match="unknown Uformer preset"):
        MODELS.build(dict(type="dense_adapters.Uformer", preset="XXL"))


def test_vit_backbone_with_denoise_head():
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type="dense_adapters.Restorer",
        backbone=dict(type="dense_adapters.RegViT", arch="tiny", embed_dim=32, depth=4, num_heads=2, patch_size=8,
                      img_size=32, num_register_tokens=2, out_indices=(1, 3)),
        head=dict(type="dense_adapters.DenoiseHead", in_channels=32, in_index=(0, 1), embed_dim=8, win_size=4)))
    assert model.size_multiple == 8  # lcm(patch 8, 2**2 levels)
    x = torch.rand(2, 3, 30, 45)  # odd sizes: padded to 32 x 48 inside, cropped back
    y = model(x, mode="tensor")
    assert y.shape == x.shape
    (y - x.flip(-1)).square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum())]
    assert not missing, missing
    with pytest.raises(ValueError, match="multiples of 4"):
        model.head([torch.zeros(1, 32, 2, 2)] * 2, torch.zeros(1, 3, 18, 16))


def test_short_cpu_training_beats_the_noisy_input(denoise_sample, tmp_path):
    """Uformer (tiny) trained ~60 iterations on 32 px crops of 8 real photos with fresh Gaussian noise
    (sigma 25) raises held-out PSNR on 4 other photos clearly above the noisy input's."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    from dense_adapters.datasets.denoise import SyntheticNoiseDataset
    from dense_adapters.evaluation.restoration import psnr

    cfg = Config.fromfile(os.path.join(ROOT, "configs", "denoise_synthetic_uformer_t.py"))
    iters = 60
    cfg.merge_from_dict({
        "work_dir": str(tmp_path),
        "model.generator": TINY_UFORMER,
        "optim_wrapper.optimizer.lr": 2e-3,
        "param_scheduler": [dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=5)],
        "train_cfg.max_iters": iters, "train_cfg.val_interval": 10 * iters,
        "default_hooks.checkpoint.interval": 10 * iters, "default_hooks.checkpoint.save_last": False,
        "default_hooks.checkpoint.save_best": None, "default_hooks.logger.interval": 20,
    })
    for name in ("train_dataloader", "val_dataloader", "test_dataloader"):
        cfg[name].update(num_workers=0, persistent_workers=False)
        cfg[name].dataset.data_root = denoise_sample
    cfg.train_dataloader.dataset.pipeline[1].crop_size = 32
    runner = Runner.from_cfg(cfg)
    runner.train()  # validates once, at the last iteration
    metrics = {k.split("/")[-1]: v for k, v in runner.message_hub.log_scalars.items() if k.startswith("val/")}
    metrics = {k: v.current() for k, v in metrics.items()}

    val = SyntheticNoiseDataset(data_root=denoise_sample, img_dir="val/gt", seed=0, test_mode=True,
                                pipeline=cfg.val_dataloader.dataset.pipeline)
    noisy = np.mean([psnr(val[i]["inputs"], val[i]["data_samples"].gt_img) for i in range(len(val))])
    assert 19 < noisy < 23
    assert metrics["PSNR"] > noisy + 3.0, (metrics, noisy)


def test_uformer_init_cfg_loads_the_authors_release(tmp_path):
    """init_cfg=Pretrained converts the authors' layout ({'state_dict': {'module.' ...}}) into the generator; a tensor
    no converter consumes is refused in one line, unless partial=True."""
    from dense_adapters.errors import CheckpointMismatch
    from dense_adapters.nn import Uformer
    from dense_adapters.nn.convert import uformer_to_authors

    kw = dict(embed_dim=8, depths=(1, 1, 1, 1, 1), win_size=4, drop_path_rate=0.0)
    torch.manual_seed(3)
    src = Uformer(**kw).eval()
    sd = {f"module.{k}": v for k, v in uformer_to_authors(src.state_dict()).items()}
    torch.save({"epoch": 1, "state_dict": sd}, tmp_path / "model_best.pth")
    init = dict(type="Pretrained", checkpoint=str(tmp_path / "model_best.pth"))
    model = MODELS.build(dict(type="dense_adapters.Restorer",
                              generator=dict(type="dense_adapters.Uformer", init_cfg=init, **kw))).eval()
    model.init_weights()
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        assert torch.equal(model(x, mode="tensor"), src(x))
    torch.save({"state_dict": {**sd, "module.extra_head.weight": torch.zeros(3)}}, tmp_path / "extra.pth")
    bad = MODELS.build(dict(type="dense_adapters.Uformer", init_cfg={**init, "checkpoint": str(tmp_path / "extra.pth")},
                            **kw))
    with pytest.raises(CheckpointMismatch, match="unused.*extra_head"):
        bad.init_weights()
    with pytest.raises(ValueError, match="unknown keys"):
        MODELS.build(dict(type="dense_adapters.Uformer", init_cfg={**init, "strcit": True}, **kw)).init_weights()
