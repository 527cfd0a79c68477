# DINOv2's linear-probe schedule (official config dinov2_vits14_ade20k_{linear,ms}_config.py, mmcv 0.x runner):
# AdamW lr 1e-3, betas (0.9, 0.999), weight decay 1e-4, no gradient clipping; poly decay (power 1, to 0) over all
# 40k iterations from iteration 0, multiplied during the first 1500 by a linear warm-up from 1e-6 x lr (mmcv's
# warmup='linear', warmup_ratio=1e-6: lr_i = lr (1 - i/40000) (1e-6 + (1 - 1e-6) i/1500) for i < 1500). mmengine
# chains two schedulers to that product; their `end`s are one past mmcv's horizons because mmengine reaches the
# final factor at end - 1 (tests/test_protocols.py checks all 40k iterations against the formula: 3e-11).
# Validation and checkpoints every 10k (the reference's evaluation interval).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=1e-4),
    clip_grad=None)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, end_factor=1.0, by_epoch=False, begin=0, end=1501),
    dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=False, begin=0, end=40001),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=40000, val_interval=10000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=10000, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
env_cfg = dict(cudnn_benchmark=True, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
visualizer = dict(type='SegLocalVisualizer', vis_backends=[dict(type='LocalVisBackend')], name='visualizer')
