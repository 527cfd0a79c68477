# DINOv3's NYU depth schedule (dinov3/eval/depth/configs/config-nyu.yaml, schedulers.py, train.py): AdamW lr 3e-4,
# betas (0.9, 0.99), weight decay 1e-4, gradient clipping at 35, seed 321 (+ rank); WarmupOneCycleLR over 38,400 iterations
# with a 12,800-iteration warm-up (final_div_factor 1000), stepped after every iteration. Its use_beta1 (on by
# default) also drives AdamW's beta1: 0 during the warm-up, then cosine from 0.85 to 0.95 - the second scheduler.
# Both are dense_adapters.engine.schedulers (exact: tests/test_protocols.py). Validation every 1600 iterations
# (EvalConfig.eval_interval).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=3e-4, betas=(0.9, 0.99), weight_decay=1e-4),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='dense_adapters.WarmupOneCycleLR', total_steps=38400, warmup_iters=12800, final_div_factor=1000.0,
         by_epoch=False),
    dict(type='dense_adapters.WarmupOneCycleMomentum', total_steps=38400, warmup_iters=12800,
         base_momentum=0.85, max_momentum=0.95, by_epoch=False),
]
randomness = dict(seed=321, diff_rank_seed=True)  # DINOv3: fix_random_seeds(seed + rank)
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
