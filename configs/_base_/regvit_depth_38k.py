# Frozen DINOv2 ViT-S/14 with 4 registers + the "lin. 1" depth probe (cls + patch tokens of the last block,
# bilinear x4, 256 uniform bins, linear normalisation, depth = expectation over bin centres), SILog +
# gradient matching, AdamW 1e-4 for 38.4k iterations. Leaves change the probed blocks or the head.
min_depth, max_depth = 1e-3, 10.0
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=0,  # depth padding must read "no ground truth" (0), not mmseg's default 255 (m)
    size=(420, 560))
model = dict(
    type='dense_adapters.ViTDepthEstimator',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='dense_adapters.RegViT',
        preset='dinov2_vits14_reg4',
        out_indices=(11, ),
        output_cls_token=True,
        final_norm=True,
        frozen=True,
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
        min_depth=min_depth,
        max_depth=max_depth,
        align_corners=False,
        loss_decode=[
            dict(type='dense_adapters.SILogLoss', variance_focus=0.85, reduction='batch', min_depth=min_depth,
                 max_depth=max_depth, loss_weight=1.0, loss_name='loss_silog'),
            dict(type='dense_adapters.GradientMatchingLoss', scales=4, min_depth=min_depth, max_depth=max_depth,
                 loss_weight=0.5, loss_name='loss_grad'),
        ]),
    train_cfg=dict(),
    # whole-image inference on the 480x640 test image (padded to 490x644 and cropped back), averaged with the
    # flipped image; mode='slide', crop_size=(420, 560), stride=(280, 280) slides instead
    test_cfg=dict(mode='whole', flip=True))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-2))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=38400, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=38400, val_interval=3200)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=3200, max_keep_ckpts=2,
                    save_best='rmse', rule='less'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
