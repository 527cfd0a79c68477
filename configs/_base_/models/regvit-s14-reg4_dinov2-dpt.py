# DINOv2's DPT depth probe (DINOv2 paper, Sec. 7.4; hub/depthers.py _make_dinov2_dpt_depth_head; head
# eval/depth/models/decode_heads/dpt_head.py; training config stored in the released heads): frozen DINOv2
# ViT-S/14 (here with 4 registers), blocks 3, 6, 9, 12 (0-based 2, 5, 8, 11) *without* the final LayerNorm, each
# as [patch map, cls]; reassembled with the "project" readout (Linear(2C -> C) + GELU on [patch | cls]) to
# 48/96/192/384 channels at 4x, 2x, 1x, 1/2x of the grid, 3x3 convs to 256, fused coarse to fine (each fusion
# resizes the skip level to the running map), regressing relu(x) + 1e-3 m. No norm layers (norm_cfg=None).
# Losses, padding, alignment and test as the linear probes (_base_/models/regvit-s14-reg4_dinov2-depth-linear.py).
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
        out_indices=(2, 5, 8, 11),
        output_cls_token=True,
        final_norm=False,
        frozen=True,
        pad_mode='center',
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/dinov2_vits14_reg4_pretrain.pth',
                      source='dinov2')),
    decode_head=dict(
        type='dense_adapters.DepthDPTHead',
        embed_dims=384,
        post_process_channels=[48, 96, 192, 384],
        readout_type='project',
        channels=256,
        in_index=[0, 1, 2, 3],
        norm_cfg=None,
        min_depth=min_depth,
        max_depth=max_depth,
        align_corners=False,
        loss_decode=[
            dict(type='dense_adapters.SILogLoss', variance_focus=0.85, reduction='batch', min_depth=0.0,
                 max_depth=None, log_offset=1e-3, unbiased=True, warmup_iters=100, loss_weight=1.0,
                 loss_name='loss_depth'),
            dict(type='dense_adapters.GradientMatchingLoss', variant='dinov2', min_depth=0.0, max_depth=None,
                 loss_weight=0.5, loss_name='loss_grad'),
        ]),
    train_cfg=dict(),
    test_cfg=dict(mode='whole', flip=True))
