# DeiT's optimisation (deit/main.py with timm's create_optimizer/create_scheduler): AdamW lr 5e-4 x total batch /
# 512, betas (0.9, 0.999), eps 1e-8, weight decay 0.05 except on 1-D parameters (biases, norms, LayerScale) and the
# position embedding / cls / register tokens; 300 epochs, stepped per epoch as timm's CosineLRScheduler: linear
# warm-up from 1e-6 over epochs 0-4 (start factor 1e-3 at the stated total batch of 1024), cosine to 1e-5 over the
# 300 epochs (the two chained schedulers stay within 0.04% of the peak lr of timm's schedule at every epoch,
# tests/engine/test_classification_engine.py). Validation every epoch.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05),
    paramwise_cfg=dict(
        flat_decay_mult=0.0,
        custom_keys={'pos_embed': dict(decay_mult=0.0), 'cls_token': dict(decay_mult=0.0),
                     'reg_token': dict(decay_mult=0.0)}))
auto_scale_lr = dict(enable=True, base_batch_size=512)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=6),
    dict(type='CosineAnnealingLR', T_max=300, eta_min=1e-5, by_epoch=True, begin=0, end=300),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=300, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=True, interval=1, max_keep_ckpts=2, save_best='accuracy/top1',
                    rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'))
# runtime of a classification run: fixed 224x224 inputs (cudnn benchmark on), the plain visualizer, seed 0
env_cfg = dict(cudnn_benchmark=True, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')], name='visualizer')
randomness = dict(seed=0)
