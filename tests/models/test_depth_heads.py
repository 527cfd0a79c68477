"""Depth heads, losses and the ViT depth estimator: bins, shapes on non-square grids, loss formulas against NumPy
and mmseg, sliding/flip inference, and a few training iterations on the real NYU-format sample."""
import math
import os

import numpy as np
import pytest
import torch

from dense_adapters.registry import MODELS

from dense_adapters.utils import register_all_modules

register_all_modules()

from dense_adapters.models.heads.depth_base import bin_centres, expected_depth, normalize_bins  # noqa: E402
from dense_adapters.models.losses.depth_losses import GradientMatchingLoss, SILogLoss  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = dict(embed_dim=32, depth=4, num_heads=2, img_size=56, init_cfg=None)


@pytest.fixture(scope="module")
def nyu_sample(tmp_path_factory) -> str:
    from dense_adapters.datasets.samples.nyu import make_nyu_sample

    return make_nyu_sample(str(tmp_path_factory.mktemp("nyu")))


def backbone(out_indices=(3,), **kw):
    return MODELS.build(dict(type="dense_adapters.RegViT", preset="dinov2_vits14_reg4", out_indices=out_indices,
                             output_cls_token=True, frozen=False, **{**TINY, **kw}))


# ------------------------------------------------------------------ bins
@pytest.mark.parametrize("strategy", ["UD", "SID"])
def test_one_hot_bins_give_the_bin_centre(strategy):
    c = bin_centres(1e-3, 10.0, 256, strategy)
    assert c[0].item() == pytest.approx(1e-3) and c[-1].item() == pytest.approx(10.0)
    k = torch.tensor([0, 17, 128, 255])
    probs = torch.nn.functional.one_hot(k, 256).float().T.reshape(1, 256, 2, 2)  # one bin per pixel
    depth = expected_depth(probs, c)
    assert depth.shape == (1, 1, 2, 2)
    torch.testing.assert_close(depth.flatten(), c[k])


def test_uniform_bins_are_evenly_spaced():
    c = bin_centres(1e-3, 10.0, 256, "UD").double().numpy()
    np.testing.assert_allclose(c, 1e-3 + np.arange(256) * (10.0 - 1e-3) / 255, rtol=1e-6)
    s = bin_centres(0.5, 8.0, 5, "SID").double().numpy()
    np.testing.assert_allclose(s, np.geomspace(0.5, 8.0, 5), rtol=1e-6)


def test_linear_normalisation_matches_numpy_and_a_dominant_logit_reaches_its_bin():
    z = torch.randn(2, 7, 3, 5)
    w = np.maximum(z.numpy(), 0) + 0.1
    np.testing.assert_allclose(normalize_bins(z, "linear").numpy(), w / w.sum(1, keepdims=True), rtol=1e-6)
    torch.testing.assert_close(normalize_bins(z, "softmax"), torch.softmax(z, 1))
    c = bin_centres(1e-3, 10.0, 256)
    logits = torch.full((1, 256, 1, 1), -5.0)
    logits[0, 200] = 1e6
    assert expected_depth(normalize_bins(logits, "linear"), c).item() == pytest.approx(c[200].item(), rel=1e-4)
    with pytest.raises(ValueError, match="norm_strategy"):
        normalize_bins(z, "tanh")


# ----------------------------------------------------------------- heads
@pytest.mark.parametrize("levels", [1, 4])
def test_linear_head_shapes_cls_and_range(levels):
    idx = (3,) if levels == 1 else (0, 1, 2, 3)
    bb = backbone(idx)
    head = MODELS.build(dict(type="dense_adapters.DepthLinearHead", in_channels=[32] * levels,
                             in_index=list(range(levels)), upsample=4, n_bins=16))
    assert head.channels == 64 * levels and head.conv_depth.in_channels == 64 * levels
    x = torch.randn(2, 3, 70, 126)  # 5 x 9 patch grid
    feats = bb(x)
    d = head(feats)
    assert d.shape == (2, 1, 20, 36)
    assert (d >= 1e-3).all() and (d <= 10.0).all()
    # the cls token reaches every pixel: changing it changes the prediction everywhere
    feats2 = tuple([m, c + 1.0] for m, c in feats)
    head.conv_depth.weight.data.normal_()
    assert (head(feats2) - head(feats)).abs().min() > 0


def test_dpt_head_shapes_on_non_square_and_odd_grids():
    bb = backbone((0, 1, 2, 3))
    head = MODELS.build(dict(type="dense_adapters.DepthDPTHead", embed_dims=32, post_process_channels=[8, 16, 32, 32],
                             channels=16, readout_type="project"))
    for H, W in ((70, 98), (42, 112), (56, 56)):  # grids 5x7 (odd), 3x8, 4x4
        d = head(bb(torch.randn(1, 3, H, W)))
        h, w = H // 14, W // 14  # odd sides: the 1/2x level has ceil(h/2) rows and the output 32 ceil(h/2)
        assert d.shape == (1, 1, 32 * math.ceil(h / 2), 32 * math.ceil(w / 2))
        assert (d >= 1e-3).all()
    with pytest.raises(ValueError, match="output_cls_token"):
        head(tuple(m for m, _ in bb(torch.randn(1, 3, 56, 56))))


def test_dpt_readout_uses_cls_not_registers():
    """Registers never reach the head: the maps come from patch tokens only and the readout reads cls."""
    bb = backbone((0, 1, 2, 3))
    head = MODELS.build(dict(type="dense_adapters.DepthDPTHead", embed_dims=32, post_process_channels=[8, 16, 32, 32],
                             channels=16)).eval()
    x = torch.randn(1, 3, 56, 70)
    feats = bb(x)
    out = head(feats)
    bumped = head(tuple([m, c * 3.0] for m, c in feats))
    assert not torch.allclose(out, bumped)  # 'project' readout depends on cls
    maps, prefix = bb.vit.forward_intermediates(x, bb.out_indices, return_prefix_tokens=True)
    assert prefix[0].shape[1] == 5  # cls + 4 registers, kept out of the maps
    torch.testing.assert_close(feats[0][0], maps[0])


def test_estimator_output_matches_input_size_including_non_multiples():
    est = MODELS.build(dict(
        type="dense_adapters.ViTDepthEstimator",
        backbone=dict(type="dense_adapters.RegViT", preset="dinov2_vits14_reg4", out_indices=(0, 1, 2, 3),
                      output_cls_token=True, **TINY),
        decode_head=dict(type="dense_adapters.DepthDPTHead", embed_dims=32, post_process_channels=[8, 16, 32, 32],
                         channels=16),
        test_cfg=dict(mode="whole"))).eval()
    for H, W in ((70, 98), (65, 90)):
        with torch.no_grad():
            d = est.encode_decode(torch.randn(1, 3, H, W), None)
        assert d.shape == (1, 1, H, W)
    assert est._pad_sizes(65, 90) == (4, 4, 2, 3)  # 90 -> 98 (4 + 4), 65 -> 70 (2 + 3)


# ---------------------------------------------------------------- losses
def _depth_pair(seed=0, shape=(2, 1, 12, 16)):
    g = torch.Generator().manual_seed(seed)
    gt = torch.rand(shape, generator=g) * 9 + 0.5
    gt[0, 0, :3, :4] = 0.0  # missing ground truth
    gt[1, 0, -2:, -5:] = 12.0  # beyond max_depth
    pred = (gt.clamp(0.5, 9.5) * (1 + 0.2 * torch.randn(shape, generator=g))).abs() + 0.05
    return pred, gt


def test_silog_batch_matches_numpy_formula():
    pred, gt = _depth_pair()
    loss = SILogLoss(variance_focus=0.85, reduction="batch", min_depth=1e-3, max_depth=10.0)(pred, gt)
    p, t = pred.double().numpy(), gt.double().numpy()
    m = (t > 1e-3) & (t <= 10.0)
    g = np.log(p[m]) - np.log(t[m])
    ref = np.sqrt(np.mean(g ** 2) - 0.85 * np.mean(g) ** 2)
    # DINOv2's form: var(g) + 0.15 mean(g)^2 with the population variance
    assert ref == pytest.approx(np.sqrt(np.var(g) + 0.15 * np.mean(g) ** 2))
    assert loss.item() == pytest.approx(ref, rel=1e-5)


def test_silog_per_image_equals_mmseg_siloglosss_at_lambda_half():
    from mmseg.models.losses import SiLogLoss as MMSegSiLog

    pred, gt = _depth_pair(1)
    gt[1, 0, -2:, -5:] = 5.0  # mmseg masks only gt > eps: keep every target in range for the comparison
    ours = SILogLoss(variance_focus=0.5, reduction="image", min_depth=1e-6)(pred, gt)
    ref = MMSegSiLog(eps=1e-6)(pred, gt)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5)


def test_gradient_matching_matches_numpy():
    pred, gt = _depth_pair(2)
    loss = GradientMatchingLoss(scales=3, max_depth=10.0)(pred, gt)
    p, t = pred.double().numpy()[:, 0], gt.double().numpy()[:, 0]
    valid = (t > 1e-3) & (t <= 10.0)
    r = np.where(valid, np.log(p) - np.log(np.where(valid, t, 1)), 0)
    ref = 0.0
    for s in (1, 2, 4):
        rs, ms = r[:, ::s, ::s], valid[:, ::s, ::s]
        tot = 0.0
        for b in range(rs.shape[0]):
            for y in range(rs.shape[1]):
                for x in range(rs.shape[2]):
                    if x + 1 < rs.shape[2] and ms[b, y, x] and ms[b, y, x + 1]:
                        tot += abs(rs[b, y, x + 1] - rs[b, y, x])
                    if y + 1 < rs.shape[1] and ms[b, y, x] and ms[b, y + 1, x]:
                        tot += abs(rs[b, y + 1, x] - rs[b, y, x])
        ref += tot / ms.sum()
    assert loss.item() == pytest.approx(ref, rel=1e-5)


def test_losses_without_valid_pixels_are_zero_with_gradient_and_bad_shapes_fail():
    pred = torch.rand(1, 1, 4, 4, requires_grad=True)
    for loss in (SILogLoss(), SILogLoss(reduction="image"), GradientMatchingLoss()):
        out = loss(pred, torch.zeros(1, 1, 4, 4))
        assert out.item() == 0.0
        out.backward()
    with pytest.raises(ValueError, match=r"\[B, 1, H, W\]"):
        SILogLoss()(torch.rand(1, 1, 4, 4), torch.rand(1, 1, 4, 5))
    with pytest.raises(ValueError, match="loss_"):
        SILogLoss(loss_name="silog")


# ------------------------------------------------------------- inference
def _estimator(test_cfg):
    return MODELS.build(dict(
        type="dense_adapters.ViTDepthEstimator",
        backbone=dict(type="dense_adapters.RegViT", preset="dinov2_vits14_reg4", out_indices=(3,),
                      output_cls_token=True, **TINY),
        decode_head=dict(type="dense_adapters.DepthLinearHead", in_channels=[32], in_index=[0], n_bins=16),
        test_cfg=test_cfg)).eval()


def test_slide_mode_slides_and_flip_averages():
    torch.manual_seed(0)
    x = torch.randn(1, 3, 56, 84)
    metas = [dict(ori_shape=(56, 84), img_shape=(56, 84), pad_shape=(56, 84))]
    est = _estimator(dict(mode="slide", crop_size=(56, 56), stride=(28, 28)))
    est.decode_head.conv_depth.weight.data.normal_()
    seen = []
    orig = est.encode_decode
    est.encode_decode = lambda inp, m=None: (seen.append(tuple(inp.shape[2:])), orig(inp, m))[1]
    with torch.no_grad():
        slide = est.inference(x, metas)
        est.test_cfg.mode = "whole"
        whole = est.inference(x, metas)
        est.test_cfg.flip = True
        flipped = est.inference(x, metas)
    assert seen == [(56, 56), (56, 56), (56, 84), (56, 84), (56, 84)]  # 2 windows, then whole, whole + flip
    assert slide.shape == whole.shape == (1, 1, 56, 84)
    assert not torch.allclose(slide, whole)  # mmseg 1.2.2 would return the whole-image result here
    with torch.no_grad():
        ref = 0.5 * (orig(x) + orig(x.flip(3)).flip(3))
    torch.testing.assert_close(flipped, ref)


def test_estimator_rejects_bad_test_cfg():
    with pytest.raises(ValueError, match="crop_size"):
        _estimator(dict(mode="slide"))
    with pytest.raises(ValueError, match="test_cfg.mode"):
        _estimator(dict(mode="tiled"))


# ------------------------------------------------------ training (Runner)
def _tiny_cfg(name: str, data_root: str, work_dir: str, iters: int):
    from mmengine.config import Config

    cfg = Config.fromfile(os.path.join(ROOT, "configs", name))
    cfg.work_dir = work_dir
    n = len(cfg.model.backbone.out_indices)
    cfg.model.backbone.update(TINY, out_indices=(3,) if n == 1 else (0, 1, 2, 3))
    head = cfg.model.decode_head
    if head.type.endswith("DPTHead"):
        head.update(embed_dims=32, post_process_channels=[8, 16, 32, 32], channels=16)
    else:
        head.update(in_channels=[32] * n, n_bins=32)
    cfg.model.data_preprocessor.size = (56, 70)
    train = [dict(type="LoadImageFromFile"), dict(type="LoadDepthAnnotation", depth_rescale_factor=1e-3),
             dict(type="Resize", scale=(84, 63), keep_ratio=False), dict(type="RandomCrop", crop_size=(56, 70)),
             dict(type="PackSegInputs")]
    test = [dict(type="LoadImageFromFile"), dict(type="Resize", scale=(84, 63), keep_ratio=False),
            dict(type="LoadDepthAnnotation", depth_rescale_factor=1e-3), dict(type="PackSegInputs")]
    cfg.train_dataloader.update(batch_size=3, num_workers=0, persistent_workers=False)
    cfg.train_dataloader.dataset.update(data_root=data_root, pipeline=train)
    for key in ("val_dataloader", "test_dataloader"):
        cfg[key].update(num_workers=0, persistent_workers=False)
        cfg[key].dataset.update(data_root=data_root, pipeline=test)
    cfg.train_cfg = dict(type="IterBasedTrainLoop", max_iters=iters, val_interval=iters)
    cfg.param_scheduler = []
    cfg.optim_wrapper.optimizer.lr = 3e-3
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = dict(type="CheckpointHook", by_epoch=False, interval=iters)
    cfg.randomness = dict(seed=0)
    return cfg


def test_linear_probe_trains_on_nyu_sample_and_evaluates(nyu_sample, tmp_path):
    from mmengine.runner import Runner

    cfg = _tiny_cfg("nyu_regvit_linear.py", nyu_sample, str(tmp_path), iters=25)
    runner = Runner.from_cfg(cfg)
    runner.train()
    losses = runner.message_hub.get_scalar("train/loss").data[0]
    assert len(losses) == 25 and np.isfinite(losses).all()
    silog = runner.message_hub.get_scalar("train/decode.loss_depth").data[0]  # DINOv2's SigLoss (warm-up phase)
    assert np.mean(losses[-5:]) < 0.95 * np.mean(losses[:5])
    assert np.mean(silog[-5:]) < 0.9 * np.mean(silog[:5])  # (the gradient term moves little on random features)
    metrics = runner.val_loop.run()  # Eigen crop applies: the sample's ground truth is 480x640
    for k in ("d1", "rmse", "silog", "rmse_pooled", "abs_rel_pooled"):
        assert np.isfinite(metrics[k])
    assert metrics["n_images"] == 2
    assert not any(p.requires_grad for p in runner.model.backbone.parameters())  # frozen probe


@pytest.mark.parametrize("name", ["nyu_regvit_linear4.py", "nyu_regvit_dpt.py"])
def test_other_configs_train_a_step(name, nyu_sample, tmp_path):
    from mmengine.runner import Runner

    cfg = _tiny_cfg(name, nyu_sample, str(tmp_path), iters=2)
    runner = Runner.from_cfg(cfg)
    runner.train()
    losses = runner.message_hub.get_scalar("train/loss").data[0]
    assert np.isfinite(losses).all()
