# DINOv2's linear depth probe, "lin. 1" (DINOv2 paper, Sec. 7.4; hub/depthers.py _make_dinov2_linear_depth_head;
# head eval/depth/models/decode_heads/linear_head.py BNHead with classify=True; training config stored in the
# released heads): frozen DINOv2 ViT-S/14 (here with 4 registers), the last block read *without* the final
# LayerNorm (get_intermediate_layers' norm=False), its cls token concatenated to every patch token (768 channels),
# bilinear x4, a 1x1 conv (PyTorch's default init; no BN: DINOv2 comments it out) to 256 depth bins spaced
# uniformly over [1e-3, 10] m, "linear" normalisation ((relu(z) + 0.1) / sum), depth = expectation over the bins.
# Losses as DINOv2's: SigLoss (sqrt(var(g) + 0.15 mean(g)^2), g = log(d + 1e-3) ratios over 0 < gt, unbiased var,
# the first 100 iterations on 0.15 mean(g)^2 alone) + 0.5 x GradientLoss as written (0 at 2 images per GPU).
# Padding and alignment as DINOv2's depther: the backbone centre-pads to patch multiples, the prediction is
# clamped to [1e-3, 10] and resized to the image. Test on the whole image, averaged with its flip.
# "lin. 4" overrides out_indices and in_channels (its leaf). Every setting and its source: docs/protocols.md.
min_depth, max_depth = 1e-3, 10.0
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=0,  # depth padding must read "no ground truth" (0), not mmseg's default 255 (m)
    size=(416, 544))
model = dict(
    type='dense_adapters.ViTDepthEstimator',
    crop_padding=False,
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='dense_adapters.RegViT',
        preset='dinov2_vits14_reg4',
        out_indices=(-1, ),  # the last block
        output_cls_token=True,
        final_norm=False,
        frozen=True,
        pad_mode='center',
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/dinov2_vits14_reg4_pretrain.pth',
                      source='dinov2')),
    decode_head=dict(
        type='dense_adapters.DepthLinearHead',
        in_channels=[384],
        in_index=[0],
        use_cls_token=True,
        upsample=4,
        n_bins=256,
        bins_strategy='UD',
        norm_strategy='linear',
        use_bn=False,
        min_depth=min_depth,
        max_depth=max_depth,
        align_corners=False,
        init_cfg=None,
        loss_decode=[
            dict(type='dense_adapters.SILogLoss', variance_focus=0.85, reduction='batch', min_depth=0.0,
                 max_depth=None, log_offset=1e-3, unbiased=True, warmup_iters=100, loss_weight=1.0,
                 loss_name='loss_depth'),
            dict(type='dense_adapters.GradientMatchingLoss', variant='dinov2', min_depth=0.0, max_depth=None,
                 loss_weight=0.5, loss_name='loss_grad'),
        ]),
    train_cfg=dict(),
    test_cfg=dict(mode='whole', flip=True))
