# DINOv2's boosted linear segmentation probe, "+ms" (DINOv2 paper, Sec. 7.4; official config dinov2_vits14_ade20k_
# ms_config.py; head BNHead): frozen DINOv2 ViT-S/14 (here with 4 registers), the patch tokens of the last 4
# blocks (9-12), each after the final LayerNorm, concatenated (4 x 384 = 1536 channels), SyncBN + 1x1 conv at the
# 1/14 grid; 640x640 crops; tested at 5 scales with flips (tools/test.py --tta, see the dataset base).
# Sliding-window test, 640 windows, stride 427 (2/3 of the window as in "lin."; the ms config's own value is not
# in any copy we could read: see docs/protocols.md).
norm_cfg = dict(type='SyncBN', requires_grad=True)  # tools/train.py turns SyncBN into BN on the CPU
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(640, 640))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='dense_adapters.RegViT',
        preset='dinov2_vits14_reg4',
        out_indices=(-4, -3, -2, -1),  # the last 4 blocks (ViT-S: 9-12)
        output_cls_token=False,
        final_norm=True,
        frozen=True,
        pad_mode='center',
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/dinov2_vits14_reg4_pretrain.pth',
                      source='dinov2')),
    decode_head=dict(
        type='dense_adapters.LinearProbeHead',
        in_channels=[384, 384, 384, 384],
        in_index=[0, 1, 2, 3],
        use_cls_token=False,
        upsample=1,
        num_classes=150,
        dropout_ratio=0.0,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0, avg_non_ignore=False)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=(640, 640), stride=(427, 427)))
