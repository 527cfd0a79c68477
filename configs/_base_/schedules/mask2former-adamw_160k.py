# mmseg 1.2.2's Mask2Former ADE20K schedule: AdamW lr 1e-4, weight decay 0.05, gradient clipping at 0.01, backbone
# lr x0.1, no weight decay on norms, position/cls/register tokens and the query/level embeddings, poly decay
# (power 0.9) over 160k iterations, validation and checkpoints every 5k. Layer-wise lr decay on the ViT blocks is
# an option: --cfg-options optim_wrapper.paramwise_cfg.layer_decay_rate=0.9 (1.0 = off). Runtime of a segmentation
# run: SegLocalVisualizer (SegVisualizationHook, --show-dir); cudnn benchmark on (fixed-size training batches).
embed_multi = dict(lr_mult=1.0, decay_mult=0.0)
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='dense_adapters.LayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
    clip_grad=dict(max_norm=0.01, norm_type=2),
    paramwise_cfg=dict(
        backbone_lr_mult=0.1,
        layer_decay_rate=1.0,
        norm_decay_mult=0.0,
        custom_keys={
            'backbone.vit.pos_embed': embed_multi,
            'backbone.vit.cls_token': embed_multi,
            'backbone.vit.reg_token': embed_multi,
            'query_embed': embed_multi,
            'query_feat': embed_multi,
            'level_embed': embed_multi,
        }))
param_scheduler = [dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=160000, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=160000, val_interval=5000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=5000, max_keep_ckpts=3, save_best='mIoU'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
auto_scale_lr = dict(enable=False, base_batch_size=16)  # 8 GPUs x 2 images
env_cfg = dict(cudnn_benchmark=True, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
visualizer = dict(type='SegLocalVisualizer', vis_backends=[dict(type='LocalVisBackend')], name='visualizer')
