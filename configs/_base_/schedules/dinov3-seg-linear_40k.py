# DINOv3's linear-probe schedule (config-ade20k-linear-training.yaml; eval/segmentation/schedulers.py
# WarmupOneCycleLR; train.py): AdamW lr 1e-3, betas (0.9, 0.999), weight decay 1e-3, no effective clipping
# (gradient_clip: inf), 40k iterations; WarmupOneCycleLR with a linear warm-up from 1e-6 x lr over 1500 iterations
# (times 1 - i / 40000), then cosine to 0 over the whole 40k (final_div_factor: inf), beta1 left alone (use_beta1:
# False). DINOv3's segmentation loop steps it after every iteration but the first, hence lag=1. Exact at every
# iteration (tests/test_protocols.py). Validation every 5000 (the yaml's eval_interval).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=1e-3),
    clip_grad=None)
param_scheduler = [
    dict(type='dense_adapters.WarmupOneCycleLR', total_steps=40000, warmup_iters=1500, warmup_ratio=1e-6,
         final_div_factor=float('inf'), lag=1, by_epoch=False),
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
