# DINOv3's linear-probe schedule (config-ade20k-linear-training.yaml; eval/segmentation/schedulers.py
# WarmupOneCycleLR; train.py): AdamW lr 1e-3, betas (0.9, 0.999), weight decay 1e-3, no effective clipping
# (gradient_clip: inf), 40k iterations; linear warm-up from 1e-6 x lr over 1500 iterations, then cosine to 0 over
# the whole 40k (cos(pi i / 40000), anchored at iteration 0). After the warm-up mmengine's schedulers below give
# DINOv3's values exactly; during it DINOv3 also multiplies by the linear decay (1 - i / 40000) where this cosine
# product decays by (1 + cos(pi i / 40000)) / 2: up to 3.4% of lr higher near iteration 1500
# (tests/test_protocols.py measures it). Validation every 5000 (the yaml's eval_interval).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=1e-3),
    clip_grad=None)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, end_factor=1.0, by_epoch=False, begin=0, end=1502),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=False, begin=0, end=40000),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=40000, val_interval=5000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
env_cfg = dict(cudnn_benchmark=True, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
visualizer = dict(type='SegLocalVisualizer', vis_backends=[dict(type='LocalVisBackend')], name='visualizer')
