# DINOv3's linear segmentation probe (dinov3/eval/segmentation: config.py DecoderConfig, models/__init__.py
# build_segmentation_decoder, models/heads/linear_head.py LinearHead; configs/config-ade20k-linear-training.yaml):
# frozen DINOv3 ViT-S/16 (RoPE, 4 registers), the patch tokens of the last block after the final LayerNorm
# (backbone_out_layers=LAST, use_backbone_norm=True, return_class_token=False), Dropout2d(0.1) *then* SyncBN, then a
# 1x1 conv (init N(0, 0.01), bias 0) at the 1/16 grid; cross-entropy over all pixels (avg_non_ignore=False);
# sliding-window test, 512 windows, stride 341. Every setting and its source: docs/protocols.md.
# Weights (DINOv3 licence, not Apache): Meta's dinov3_vits16_pretrain_lvd1689m-08c60483.pth in checkpoints/, or a
# Hugging Face folder: --cfg-options model.backbone.init_cfg.checkpoint=PATH (docs/backbones.md).
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
        preset='dinov3_vits16',
        out_indices=(-1, ),  # the last block
        output_cls_token=False,
        final_norm=True,
        frozen=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/dinov3_vits16_pretrain_lvd1689m-08c60483.pth',
                      source='dinov3')),
    decode_head=dict(
        type='dense_adapters.LinearProbeHead',
        in_channels=384,
        in_index=0,
        use_cls_token=False,
        upsample=1,
        num_classes=150,
        dropout_ratio=0.1,
        dropout_first=True,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0, avg_non_ignore=False)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
