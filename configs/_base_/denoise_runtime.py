# Shared pieces of the denoising configs: Restorer + Uformer (preset T here; leaves pick the preset and
# SkipAt), Charbonnier loss (eps 1e-3), AdamW (Uformer: lr 2e-4, wd 0.02, no decay on position-bias tables),
# hooks and runtime. Data and schedule come from _base_/denoise_sidd.py or _base_/denoise_synthetic.py.
default_scope = 'mmseg'
custom_imports = dict(imports=['dense_adapters.models', 'dense_adapters.datasets', 'dense_adapters.evaluation'],
                      allow_failed_imports=False)
model = dict(
    type='dense_adapters.Restorer',
    data_preprocessor=dict(type='dense_adapters.RestorerDataPreprocessor'),
    generator=dict(type='dense_adapters.Uformer', preset='T', win_size=8, drop_path_rate=0.1, modulator=True,
                   skip_mode=None),
    loss=dict(type='dense_adapters.CharbonnierLoss', eps=1e-3))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.02),
    paramwise_cfg=dict(custom_keys={'relative_position_bias_table': dict(decay_mult=0.0)}))
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=10000, max_keep_ckpts=3, save_best='PSNR',
                    rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'))
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
