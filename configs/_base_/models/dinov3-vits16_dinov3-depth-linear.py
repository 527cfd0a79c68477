# DINOv3's linear depth probe (dinov3/eval/depth/configs/config-nyu.yaml decoder_head/losses, read with config.py
# DecoderConfig / build_depther / FeaturesToDepth, models/linear_head.py, loss.py): frozen DINOv3 ViT-S/16 (RoPE,
# 4 registers), the last block (backbone_out_layers: LAST) after the final LayerNorm (use_backbone_norm), patch
# tokens only (use_cls_token: False), BatchNorm on the features (use_batchnorm: True), no upsampling, a 1x1 conv
# (init N(0, 0.01), bias 0) to 256 bins (n_output_channels) spaced uniformly over [1e-3, 10] m with "linear"
# normalisation; depth resized to the image. Loss: SigLoss alone (losses: SIGLOSS: 1.0), with its 100-iteration
# warm-up. docs/protocols.md lists every setting with its source.
# Weights (DINOv3 licence): checkpoints/dinov3_vits16_pretrain_lvd1689m-08c60483.pth or a Hugging Face folder.
min_depth, max_depth = 1e-3, 10.0
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=0,  # depth padding must read "no ground truth" (0), not mmseg's default 255 (m)
    size=(416, 544))
model = dict(
    type='dense_adapters.ViTDepthEstimator',
    crop_padding=False,
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
        type='dense_adapters.DepthLinearHead',
        in_channels=[384],
        in_index=[0],
        use_cls_token=False,
        upsample=1,
        n_bins=256,
        bins_strategy='UD',
        norm_strategy='linear',
        use_bn=True,
        min_depth=min_depth,
        max_depth=max_depth,
        align_corners=False,
        loss_decode=[
            dict(type='dense_adapters.SILogLoss', variance_focus=0.85, reduction='batch', min_depth=min_depth,
                 max_depth=max_depth, log_offset=1e-3, unbiased=True, warmup_iters=100, loss_weight=1.0,
                 loss_name='loss_depth'),
        ]),
    train_cfg=dict(),
    test_cfg=dict(mode='whole', flip=True))
