# Plain ViT (dense_adapters.RegViT) + ViTDet simple feature pyramid + Mask2Former, the head exactly as mmseg 1.2.2
# configures it for ADE20K (configs/mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py): 100 queries, 9 decoder
# layers, 6-layer deformable-attention pixel decoder on 3 levels, class (2.0, no-object 0.1) / mask BCE (5.0) / dice
# (5.0) losses on 12544 sampled points, Hungarian matching with the same costs.
# Two changes, both needed on plain ViTs under mmcv-lite: the neck (a ViT has one stride, Mask2Former wants four) and
# the pixel decoder's attention, dense_adapters.MultiScaleDeformableAttention, which uses mmcv's compiled CUDA op
# only where full mmcv is installed and mmcv's PyTorch kernel everywhere else (impl='auto'|'pytorch'|'cuda').
# Leaves set the backbone preset and checkpoint, the neck's in_channels and the padding (see docs/mask2former.md).
num_classes = 150
embed_dims = 256
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(512, 512),  # training batches are padded (bottom/right, ignored labels) to this size
    test_cfg=dict(size_divisor=32))  # test images: to a multiple of the coarsest stride (2 x patch)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='dense_adapters.RegViT',
        out_indices=(-1,),  # ViTDet: the pyramid is built from the last block
        final_norm=True,
        drop_path_rate=0.1),  # leaves add preset=... and init_cfg=dict(type='Pretrained', ...)
    neck=dict(
        type='dense_adapters.SimpleFeaturePyramid',
        in_channels=384,
        out_channels=embed_dims,
        scale_factors=(4.0, 2.0, 1.0, 0.5),
        in_index=-1,
        norm_cfg=dict(type='LN2d', eps=1e-6)),
    decode_head=dict(
        type='dense_adapters.Mask2FormerHead',
        in_channels=[embed_dims] * 4,
        strides=[4, 8, 16, 32],
        feat_channels=embed_dims,
        out_channels=embed_dims,
        num_classes=num_classes,
        num_queries=100,
        num_transformer_feat_level=3,
        align_corners=False,
        pixel_decoder=dict(
            type='dense_adapters.MSDeformAttnPixelDecoder',
            num_outs=3,
            norm_cfg=dict(type='GN', num_groups=32),
            act_cfg=dict(type='ReLU'),
            encoder=dict(
                num_layers=6,
                layer_cfg=dict(
                    self_attn_cfg=dict(
                        type='dense_adapters.MultiScaleDeformableAttention',
                        impl='auto',
                        embed_dims=embed_dims,
                        num_heads=8,
                        num_levels=3,
                        num_points=4,
                        im2col_step=64,
                        dropout=0.0,
                        batch_first=True,
                        norm_cfg=None,
                        init_cfg=None),
                    ffn_cfg=dict(
                        embed_dims=embed_dims,
                        feedforward_channels=1024,
                        num_fcs=2,
                        ffn_drop=0.0,
                        act_cfg=dict(type='ReLU', inplace=True))),
                init_cfg=None),
            positional_encoding=dict(num_feats=embed_dims // 2, normalize=True),
            init_cfg=None),
        enforce_decoder_input_project=False,
        positional_encoding=dict(num_feats=embed_dims // 2, normalize=True),
        transformer_decoder=dict(
            return_intermediate=True,
            num_layers=9,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=embed_dims, num_heads=8, attn_drop=0.0, proj_drop=0.0,
                                   dropout_layer=None, batch_first=True),
                cross_attn_cfg=dict(embed_dims=embed_dims, num_heads=8, attn_drop=0.0, proj_drop=0.0,
                                    dropout_layer=None, batch_first=True),
                ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=2048, num_fcs=2,
                             act_cfg=dict(type='ReLU', inplace=True), ffn_drop=0.0, dropout_layer=None,
                             add_identity=True)),
            init_cfg=None),
        loss_cls=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0, reduction='mean',
                      class_weight=[1.0] * num_classes + [0.1]),
        loss_mask=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=True, reduction='mean', loss_weight=5.0),
        loss_dice=dict(type='mmdet.DiceLoss', use_sigmoid=True, activate=True, reduction='mean', naive_dice=True,
                       eps=1.0, loss_weight=5.0),
        train_cfg=dict(
            num_points=12544,
            oversample_ratio=3.0,
            importance_sample_ratio=0.75,
            assigner=dict(
                type='mmdet.HungarianAssigner',
                match_costs=[
                    dict(type='mmdet.ClassificationCost', weight=2.0),
                    dict(type='mmdet.CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
                    dict(type='mmdet.DiceCost', weight=5.0, pred_act=True, eps=1.0)
                ]),
            sampler=dict(type='mmdet.MaskPseudoSampler'))),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
