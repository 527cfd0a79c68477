"""The probe heads, losses and depth alignment against independent implementations written from the references'
formulas (DINOv2 eval/segmentation and eval/depth, hub/depthers.py; DINOv3 eval/segmentation and eval/depth), on
tiny tensors with the weights copied: each must agree to float precision."""
import math

import pytest
import torch
import torch.nn.functional as F

from dense_adapters.registry import MODELS

from dense_adapters.utils import register_all_modules

register_all_modules()

from dense_adapters.models.losses.depth_losses import GradientMatchingLoss, SILogLoss  # noqa: E402


def _bn(x, bn, training):
    """BatchNorm2d from its formula: batch statistics (biased variance) in training, running ones in eval."""
    if training:
        mean, var = x.mean((0, 2, 3)), x.var((0, 2, 3), unbiased=False)
    else:
        mean, var = bn.running_mean, bn.running_var
    x = (x - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + bn.eps)
    return x * bn.weight[None, :, None, None] + bn.bias[None, :, None, None]


def _seg_head(levels, **kw):
    head = MODELS.build(dict(type="dense_adapters.LinearProbeHead", in_channels=[8] * levels,
                             in_index=list(range(levels)), num_classes=5, **kw))
    with torch.no_grad():
        head.bn.weight.normal_()
        head.bn.bias.normal_()
        head.bn.running_mean.normal_()
        head.bn.running_var.uniform_(0.5, 2.0)
    return head


# ------------------------------------------------------------- segmentation
@pytest.mark.parametrize("levels", [1, 4])  # DINOv2 "lin." (last block) and "+ms" (last 4 blocks)
@pytest.mark.parametrize("training", [False, True])
def test_dinov2_linear_head_is_bn_then_1x1_conv_on_patch_tokens(levels, training):
    torch.manual_seed(levels)
    head = _seg_head(levels).train(training)
    feats = [torch.randn(3, 8, 5, 7) for _ in range(levels)]  # odd, non-square grid
    x = torch.cat(feats, 1)  # BNHead resize_concat: all levels share the grid here
    ref = F.conv2d(_bn(x, head.bn, training), head.conv_seg.weight, head.conv_seg.bias)
    out = head(feats)
    assert out.shape == (3, 5, 5, 7)  # logits at the patch grid; mmseg resizes them to the image
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_linear_head_resizes_levels_to_the_first_grid_as_resize_concat():
    head = _seg_head(2).eval()
    a, b = torch.randn(2, 8, 6, 8), torch.randn(2, 8, 3, 4)
    x = torch.cat([a, F.interpolate(b, (6, 8), mode="bilinear", align_corners=False)], 1)
    ref = F.conv2d(_bn(x, head.bn, False), head.conv_seg.weight, head.conv_seg.bias)
    torch.testing.assert_close(head([a, b]), ref, rtol=1e-5, atol=1e-5)


def test_dinov3_linear_head_drops_out_before_the_bn():
    """DINOv3 LinearHead.forward: Dropout2d(0.1) -> SyncBN -> 1x1 conv; predict(): BN -> conv (no dropout)."""
    head = _seg_head(1, dropout_ratio=0.1, dropout_first=True).train()
    x = torch.randn(4, 8, 5, 6)
    torch.manual_seed(7)
    out = head([x])
    torch.manual_seed(7)
    ref = F.conv2d(_bn(F.dropout2d(x, 0.1, training=True), head.bn, True), head.conv_seg.weight, head.conv_seg.bias)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    head.eval()
    ref = F.conv2d(_bn(x, head.bn, False), head.conv_seg.weight, head.conv_seg.bias)
    torch.testing.assert_close(head([x]), ref, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- depth heads
def _reference_bins_depth(logits, min_depth, max_depth):
    """DepthBaseDecodeHead.depth_pred with classify=True, bins 'UD', norm 'linear' (DINOv2 decode_head.py)."""
    bins = torch.linspace(min_depth, max_depth, logits.shape[1])
    p = torch.relu(logits) + 0.1
    p = p / p.sum(dim=1, keepdim=True)
    return torch.einsum("ikmn,k->imn", p, bins).unsqueeze(1)


@pytest.mark.parametrize("levels", [1, 4])  # "lin. 1" and "lin. 4"
def test_dinov2_linear_depth_head_matches_bnhead_classify(levels):
    torch.manual_seed(levels)
    head = MODELS.build(dict(type="dense_adapters.DepthLinearHead", in_channels=[8] * levels,
                             in_index=list(range(levels)), use_cls_token=True, upsample=4, n_bins=16,
                             min_depth=1e-3, max_depth=10.0, init_cfg=None))
    with torch.no_grad():
        head.conv_depth.weight.normal_()
    feats = [[torch.randn(2, 8, 5, 7), torch.randn(2, 8)] for _ in range(levels)]
    # BNHead._forward_feature: [patch | cls broadcast] per level; resize_concat to 4x the first grid; conv_depth
    x = [torch.cat([p, c[:, :, None, None].expand_as(p)], 1) for p, c in feats]
    x = torch.cat([F.interpolate(t, size=(20, 28), mode="bilinear", align_corners=False) for t in x], 1)
    ref = _reference_bins_depth(F.conv2d(x, head.conv_depth.weight, head.conv_depth.bias), 1e-3, 10.0)
    torch.testing.assert_close(head(feats), ref, rtol=1e-5, atol=1e-5)


def _reference_dpt(head, feats):
    """DINOv2's DPTHead.forward (eval/depth/models/decode_heads/dpt_head.py) written out with F.* and the weights
    of ``head``: reassemble, 3x3 convs, fusion that resizes the *skip* to the running map, project, HeadDepth."""
    rb = head.reassemble_blocks
    levels = []
    for i, (x, cls) in enumerate(feats):
        b, c, h, w = x.shape
        t = x.flatten(2).transpose(1, 2)  # [B, hw, C]
        lin = rb.readout_projects[i][0]
        t = F.gelu(F.linear(torch.cat([t, cls[:, None].expand_as(t)], -1), lin.weight, lin.bias))
        x = t.transpose(1, 2).reshape(b, c, h, w)
        x = F.conv2d(x, rb.projects[i].conv.weight, rb.projects[i].conv.bias)
        r = rb.resize_layers[i]
        if isinstance(r, torch.nn.ConvTranspose2d):
            x = F.conv_transpose2d(x, r.weight, r.bias, stride=r.stride)
        elif isinstance(r, torch.nn.Conv2d):
            x = F.conv2d(x, r.weight, r.bias, stride=2, padding=1)
        levels.append(F.conv2d(x, head.convs[i].conv.weight, None, padding=1))

    def rcu(unit, x):  # PreActResidualConvUnit: (ReLU, conv3x3 without bias) x 2, plus the input
        y = F.conv2d(F.relu(x), unit.conv1.conv.weight, None, padding=1)
        return F.conv2d(F.relu(y), unit.conv2.conv.weight, None, padding=1) + x

    def fuse(block, x, skip=None):
        if skip is not None:
            if skip.shape != x.shape:
                skip = F.interpolate(skip, size=x.shape[2:], mode="bilinear", align_corners=False)
            x = x + rcu(block.res_conv_unit1, skip)
        x = rcu(block.res_conv_unit2, x)
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        return F.conv2d(x, block.project.conv.weight, block.project.conv.bias)

    out = fuse(head.fusion_blocks[0], levels[-1])
    for i in range(1, 4):
        out = fuse(head.fusion_blocks[i], out, levels[-(i + 1)])
    out = F.relu(F.conv2d(out, head.project.conv.weight, head.project.conv.bias, padding=1))
    c1, _, c2, _, c3 = head.conv_depth
    out = F.conv2d(out, c1.weight, c1.bias, padding=1)
    out = F.interpolate(out, scale_factor=2, mode="bilinear", align_corners=True)
    out = F.conv2d(F.relu(F.conv2d(out, c2.weight, c2.bias, padding=1)), c3.weight, c3.bias)
    return F.relu(out) + head.min_depth


@pytest.mark.parametrize("hw", [(4, 6), (5, 7), (3, 8)])  # even, odd (NYU-like), mixed
def test_dpt_head_matches_dinov2_dpthead_on_even_and_odd_grids(hw):
    torch.manual_seed(sum(hw))
    head = MODELS.build(dict(type="dense_adapters.DepthDPTHead", embed_dims=16, post_process_channels=[4, 8, 16, 16],
                             channels=8, readout_type="project", norm_cfg=None)).eval()
    feats = [[torch.randn(2, 16, *hw), torch.randn(2, 16)] for _ in range(4)]
    with torch.no_grad():
        out = head(feats)
        ref = _reference_dpt(head, feats)
    h, w = hw
    assert out.shape == (2, 1, 32 * math.ceil(h / 2), 32 * math.ceil(w / 2))
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------- losses
def _pair(batch, seed=0):
    g = torch.Generator().manual_seed(seed)
    gt = torch.rand(batch, 1, 10, 12, generator=g) * 9 + 0.5
    gt[0, 0, :2, :3] = 0.0  # no ground truth
    pred = (gt.clamp(min=0.5) * (1 + 0.3 * torch.randn(gt.shape, generator=g))).abs() + 0.05
    return pred, gt


def _dinov2_sigloss(pred, gt, warm):
    """DINOv2 SigLoss(valid_mask=True, max_depth=None) (eval/depth/models/losses/sigloss.py)."""
    m = gt > 0
    g = torch.log(pred[m] + 1e-3) - torch.log(gt[m] + 1e-3)
    if warm:
        return torch.sqrt(0.15 * torch.pow(torch.mean(g), 2))
    return torch.sqrt(torch.var(g) + 0.15 * torch.pow(torch.mean(g), 2))


def test_silog_with_dinov2_settings_is_dinov2_sigloss_including_its_warm_up():
    loss = SILogLoss(variance_focus=0.85, min_depth=0.0, max_depth=None, log_offset=1e-3, unbiased=True,
                     warmup_iters=2).train()
    pred, gt = _pair(2)
    for call in range(4):
        torch.testing.assert_close(loss(pred, gt), _dinov2_sigloss(pred, gt, warm=call < 2))
    assert int(loss.warmup_calls) == 4 and "warmup_calls" in loss.state_dict()  # resumes keep the count
    fresh = SILogLoss(min_depth=0.0, log_offset=1e-3, unbiased=True, warmup_iters=2).eval()
    torch.testing.assert_close(fresh(pred, gt), _dinov2_sigloss(pred, gt, warm=False))  # eval calls do not count
    assert int(fresh.warmup_calls) == 0


def _dinov2_gradientloss(depth_pred, depth_gt):
    """DINOv2 GradientLoss(valid_mask=True, max_depth=None).gradientloss, transcribed: the slices act on the first
    two axes of the [B, 1, H, W] maps."""
    inputs = [depth_pred] + [depth_pred[:: 2 * i, :: 2 * i] for i in range(1, 4)]
    targets = [depth_gt] + [depth_gt[:: 2 * i, :: 2 * i] for i in range(1, 4)]
    total = 0
    for x, t in zip(inputs, targets):
        mask = t > 0
        n = torch.sum(mask)
        d = torch.mul(torch.log(x + 0.001) - torch.log(t + 0.001), mask)
        v = torch.mul(torch.abs(d[0:-2, :] - d[2:, :]), torch.mul(mask[0:-2, :], mask[2:, :]))
        h = torch.mul(torch.abs(d[:, 0:-2] - d[:, 2:]), torch.mul(mask[:, 0:-2], mask[:, 2:]))
        total += (torch.sum(h) + torch.sum(v)) / n
    return total


def test_dinov2_gradient_loss_as_written_is_zero_at_two_images_per_gpu():
    loss = GradientMatchingLoss(variant="dinov2", min_depth=0.0, max_depth=None)
    pred, gt = _pair(2)
    assert loss(pred, gt).item() == 0.0 == _dinov2_gradientloss(pred, gt).item()
    pred, gt = _pair(5, seed=1)
    with pytest.warns(UserWarning, match="two apart in the batch"):
        out = loss(pred, gt)
    ref = _dinov2_gradientloss(pred, gt)
    assert ref.item() > 0
    torch.testing.assert_close(out, ref)


def _dinov3_gradient_log_loss(x, t, valid):
    """DINOv3 GradientLogLoss.forward (dinov3/eval/depth/loss.py), transcribed."""
    xs = [x] + [x[..., :: 2 * i, :: 2 * i] for i in range(1, 4)]
    ts = [t] + [t[..., :: 2 * i, :: 2 * i] for i in range(1, 4)]
    ms = [valid] + [valid[..., :: 2 * i, :: 2 * i] for i in range(1, 4)]
    total = 0
    for x, t, m in zip(xs, ts, ms):
        n = torch.sum(m)
        d = torch.mul(torch.log(x + 0.001) - torch.log(t + 0.001), m)
        v = torch.mul(torch.abs(d[..., 0:-2, :] - d[..., 2:, :]), torch.mul(m[..., 0:-2, :], m[..., 2:, :]))
        h = torch.mul(torch.abs(d[..., :, 0:-2] - d[..., :, 2:]), torch.mul(m[..., :, 0:-2], m[..., :, 2:]))
        total += (torch.sum(h) + torch.sum(v)) / n
    return total


def test_dinov3_gradient_variant_is_dinov3_gradient_log_loss():
    pred, gt = _pair(3, seed=2)
    loss = GradientMatchingLoss(variant="dinov3", min_depth=1e-3, max_depth=10.0)
    valid = (gt > 1e-3) & (gt <= 10.0)
    torch.testing.assert_close(loss(pred, gt), _dinov3_gradient_log_loss(pred, gt, valid))
    assert loss(pred, gt).item() > 0
    with pytest.raises(ValueError, match="variant"):
        GradientMatchingLoss(variant="megadepth")


# ------------------------------------------------------- depth alignment (estimator)
TINY = dict(type="dense_adapters.RegViT", preset="dinov2_vits14_reg4", embed_dim=32, depth=2, num_heads=2,
            img_size=56, init_cfg=None, out_indices=(1,), output_cls_token=True, final_norm=False)


def test_estimator_without_crop_padding_aligns_as_dinov2s_depther():
    """DINOv2: CenterPadding before the backbone, head, clamp, resize to the unpadded input (encode_decode)."""
    torch.manual_seed(0)
    est = MODELS.build(dict(
        type="dense_adapters.ViTDepthEstimator", crop_padding=False, backbone=TINY,
        decode_head=dict(type="dense_adapters.DepthLinearHead", in_channels=[32], in_index=[0], n_bins=8,
                         max_depth=4.0, init_cfg=None),
        test_cfg=dict(mode="whole"))).eval()
    with torch.no_grad():
        est.decode_head.conv_depth.weight.normal_(std=5.0)  # push some predictions outside [1e-3, 4]
        x = torch.randn(1, 3, 65, 90)  # not patch multiples: padded to 70 x 98
        padded = F.pad(x, (4, 4, 2, 3))  # CenterPadding(14): left/right 4/4, top/bottom 2/3
        depth = est.decode_head(est.backbone(padded)).clamp(1e-3, 4.0)
        ref = F.interpolate(depth, size=(65, 90), mode="bilinear", align_corners=False)
        torch.testing.assert_close(est.encode_decode(x, None), ref)
        est.crop_padding = True  # this toolkit's alignment differs: pad, resize to the padded canvas, crop back
        assert not torch.allclose(est.encode_decode(x, None), ref)
