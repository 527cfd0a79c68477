# DINOv3's depth schedule (dinov3/eval/depth/config.py OptimizerConfig / SchedulerConfig): AdamW lr 1e-4, betas
# (0.9, 0.999), weight decay 0.01, gradient clipping at 35, WarmupOneCycleLR over 38,400 iterations. Its warm-up
# arguments live in the NYU yaml, which is not readable: the segmentation yaml's (1500 iterations from 1e-6 x lr,
# then cosine to 0 over the whole run) are used, with the same <= 3.4%-of-lr difference during the warm-up as
# _base_/schedules/dinov3-seg-linear_40k.py. Validation every 1600 iterations (EvalConfig.eval_interval).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.01),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, end_factor=1.0, by_epoch=False, begin=0, end=1502),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=False, begin=0, end=38400),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=38400, val_interval=1600)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1600, max_keep_ckpts=2, save_best='rmse',
                    rule='less'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
env_cfg = dict(cudnn_benchmark=True, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
visualizer = dict(type='SegLocalVisualizer', vis_backends=[dict(type='LocalVisBackend')], name='visualizer')
