# Fine-tuned DINOv2 ViT-S/14 with 4 registers (dense_adapters.RegViT, blocks 3/6/9/12 after the final norm,
# drop path 0.1) + mmseg's MultiLevelNeck (4x, 2x, 1x, 1/2x) + UPerNet, with an FCN auxiliary head on block 12.
# Weights: checkpoints/dinov2_vits14_reg4_pretrain.pth (DINOv2's file, converted when loaded); any path or URL:
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH
norm_cfg = dict(type='SyncBN', requires_grad=True)  # tools/train.py turns SyncBN into BN on the CPU
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(512, 512))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='dense_adapters.RegViT',
        preset='dinov2_vits14_reg4',
        out_indices=(2, 5, 8, 11),
        final_norm=True,
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/dinov2_vits14_reg4_pretrain.pth',
                      source='dinov2')),
    neck=dict(type='MultiLevelNeck', in_channels=[384, 384, 384, 384], out_channels=384, scales=[4, 2, 1, 0.5]),
    decode_head=dict(
        type='UPerHead',
        in_channels=[384, 384, 384, 384],
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=512,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=384,
        in_index=3,
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
