# DINOv2's linear-evaluation schedule: SGD (momentum 0.9, no weight decay), one learning rate per head scaled by
# total batch / 256, cosine to 0 over 12,500 iterations (10 "epochs" of 1,250), validation on the held-out split
# every 1,250 iterations. The test loop first picks the head with the best held-out top-1, then scores val/.
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='dense_adapters.HeadGridOptimWrapperConstructor',
    optimizer=dict(type='SGD', momentum=0.9, weight_decay=0.0))
auto_scale_lr = dict(enable=True, base_batch_size=256)
param_scheduler = [dict(type='CosineAnnealingLR', T_max=12500, eta_min=0.0, by_epoch=False, begin=0, end=12500)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=12500, val_interval=1250)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='dense_adapters.LinearProbeTestLoop', select_on='val_dataloader')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1250, max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'))
# runtime of a classification run: fixed 224x224 inputs (cudnn benchmark on), the plain visualizer, seed 0
env_cfg = dict(cudnn_benchmark=True, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')], name='visualizer')
randomness = dict(seed=0)
