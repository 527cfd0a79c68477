# DINOv3's linear depth probe as far as its evaluation code fixes it (dinov3/eval/depth/config.py DepthConfig and
# models/__init__.py DecoderConfig / build_depther / FeaturesToDepth; models/linear_head.py; loss.py): frozen
# DINOv3 ViT-S/16 (RoPE, 4 registers), the last block after the final LayerNorm (use_backbone_norm=True), patch
# tokens only (use_cls_token=False), no BN, no upsampling, a 1x1 conv (init N(0, 0.01), bias 0) to 256 bins spaced
# uniformly over [1e-3, 10] m with "linear" normalisation; depth resized to the image. Losses: SigLoss with its
# 100-iteration warm-up + 0.5 x GradientLogLoss (pixels 2 apart at strides 1, 2, 4, 6). Not readable in any copy
# (DINOv3's NYU yaml): the block choice for the linear head and the gradient-loss weight; the values here follow
# DINOv2's "lin. 1" there. docs/protocols.md lists what is read and what is assumed.
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
        use_bn=False,
        min_depth=min_depth,
        max_depth=max_depth,
        align_corners=False,
        loss_decode=[
            dict(type='dense_adapters.SILogLoss', variance_focus=0.85, reduction='batch', min_depth=min_depth,
                 max_depth=max_depth, log_offset=1e-3, unbiased=True, warmup_iters=100, loss_weight=1.0,
                 loss_name='loss_depth'),
            dict(type='dense_adapters.GradientMatchingLoss', variant='dinov3', min_depth=min_depth,
                 max_depth=max_depth, loss_weight=0.5, loss_name='loss_grad'),
        ]),
    train_cfg=dict(),
    test_cfg=dict(mode='whole', flip=True))
