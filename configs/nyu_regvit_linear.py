# NYU Depth v2 "lin. 1" probe of DINOv2 ViT-S/14 with 4 registers (DINOv2 / Registers paper protocol): frozen
# backbone, last block's patch tokens + cls token, bilinear x4, 256 uniform depth bins with linear
# normalisation, depth = expectation over the bin centres; depth range 1e-3..10 m.
#   python tools/train.py configs/nyu_regvit_linear.py
#   python tools/test.py configs/nyu_regvit_linear.py CKPT
# Data: mmseg's NYU layout in data/nyu (images/{train,test}/*.jpg, annotations/{train,test}/*.png, uint16 mm);
#   a tiny real sample: python tools/make_sample_data.py nyu data/samples  (then data_root=data/samples/nyu).
# Weights: checkpoints/dinov2_vits14_reg4_pretrain.pth (--cfg-options model.backbone.init_cfg.checkpoint=PATH).
# Evaluation protocol (docs/depth.md): Eigen crop gt[45:471, 41:601] on 480x640 ground truth, valid
#   1e-3 < gt < 10 m, predictions clipped to the range, flip TTA, metrics per image then averaged (the common
#   protocol) and pixel-pooled ("*_pooled").
_base_ = ['mmseg::_base_/datasets/nyu.py', 'mmseg::_base_/default_runtime.py']
custom_imports = dict(imports=['dense_adapters.models', 'dense_adapters.evaluation'], allow_failed_imports=False)
default_scope = 'mmseg'

min_depth, max_depth = 1e-3, 10.0
crop_size = (420, 560)  # multiples of the 14-px patch (DINOv2 trains on 416 x 544 crops)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=0,  # depth padding must read "no ground truth" (0), not mmseg's default 255 (m)
    size=crop_size)
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
    # flipped image; mode='slide', crop_size=crop_size, stride=(280, 280) slides instead
    test_cfg=dict(mode='whole', flip=True))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3),
    dict(type='RandomRotate', prob=0.5, degree=2.5, seg_pad_val=0),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='PhotoMetricDistortion', brightness_delta=16, contrast_range=(0.8, 1.2),
         saturation_range=(0.8, 1.2), hue_delta=9),
    dict(type='PackSegInputs',
         meta_keys=('img_path', 'depth_map_path', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor', 'flip',
                    'flip_direction', 'category_id')),
]
train_dataloader = dict(batch_size=8, num_workers=4, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=2)
test_dataloader = val_dataloader
val_evaluator = dict(
    _delete_=True,  # mmseg's nyu.py sets DepthMetric, whose arguments differ
    type='dense_adapters.DepthEvalMetric',
    min_depth=min_depth,
    max_depth=max_depth,
    crop='eigen',
    clip_pred=True,
    averaging=('image', 'pixel'))
test_evaluator = val_evaluator

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
