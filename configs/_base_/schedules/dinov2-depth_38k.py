# DINOv2's depth-probe schedule (the training config stored in DINOv2's released depth heads, mmcv 1.x runner):
# AdamW lr 1e-4, weight decay 0.01 (none on position embedding, cls token and norms; backbone lr x 0.1, moot
# for a frozen backbone), gradient clipping at L2 norm 35; cosine decay over all 38,400 iterations from iteration 0
# to 1e-8 x lr, multiplied during the first 12,800 by a linear warm-up from 1e-3 x lr (mmcv's warmup='linear',
# warmup_ratio=1e-3); Adam's beta1 cycled by mmcv's OneCycle momentum hook: cosine 0.95 -> 0.85 over the first 30%
# (iterations 0..11,519), back to 0.95 at the end (the hook sets 0.95 from iteration 0, whatever the optimizer
# says). mmengine's schedulers below give the same values (tests/test_protocols.py: all iterations, lr to 3e-9
# relative, beta1 to 1e-14). Validation every 1600 iterations (the reference: 800 for DPT); best abs_rel kept.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.95, 0.999), weight_decay=0.01),
    clip_grad=dict(max_norm=35, norm_type=2),
    paramwise_cfg=dict(custom_keys={
        'pos_embed': dict(decay_mult=0.0),
        'cls_token': dict(decay_mult=0.0),
        'norm': dict(decay_mult=0.0),
        'backbone': dict(lr_mult=0.1),
    }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, end_factor=1.0, by_epoch=False, begin=0, end=12801),
    dict(type='CosineAnnealingLR', eta_min_ratio=1e-8, by_epoch=False, begin=0, end=38400),
    dict(type='CosineAnnealingMomentum', eta_min=0.85, by_epoch=False, begin=0, end=11520, T_max=11519),
    dict(type='CosineAnnealingMomentum', eta_min=0.95, by_epoch=False, begin=11519, end=38400, T_max=26880),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=38400, val_interval=1600)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1600, max_keep_ckpts=2, save_best='abs_rel',
                    rule='less'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
env_cfg = dict(cudnn_benchmark=True, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
visualizer = dict(type='SegLocalVisualizer', vis_backends=[dict(type='LocalVisBackend')], name='visualizer')
