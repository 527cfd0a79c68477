# DINOv2's linear segmentation probe, "lin." (DINOv2 paper, Sec. 7.4; official config dinov2_vits14_ade20k_linear_
# config.py; head eval/segmentation/models/decode_heads/linear_head.py BNHead): frozen DINOv2 ViT-S/14 (here with
# 4 registers), the patch tokens of the last block after the final LayerNorm (get_intermediate_layers' norm=True),
# no cls token, SyncBN + 1x1 conv (dropout 0, conv init N(0, 0.01)) at the 1/14 patch grid; mmseg resizes the
# logits to the image. Inputs that are not multiples of 14 are zero-padded evenly (DINOv2's CenterPadding: a
# 512 crop runs as 518 = 37 x 14). Cross-entropy averaged over all pixels (mmseg 0.x default avg_non_ignore=False).
# Sliding-window test, 512 windows, stride 341. Every setting with its source: docs/protocols.md.
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
        out_indices=(-1, ),  # the last block
        output_cls_token=False,
        final_norm=True,
        frozen=True,
        pad_mode='center',
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/dinov2_vits14_reg4_pretrain.pth',
                      source='dinov2')),
    decode_head=dict(
        type='dense_adapters.LinearProbeHead',
        in_channels=384,
        in_index=0,
        use_cls_token=False,
        upsample=1,
        num_classes=150,
        dropout_ratio=0.0,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0, avg_non_ignore=False)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
