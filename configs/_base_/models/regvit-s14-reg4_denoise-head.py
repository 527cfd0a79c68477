# A ViT backbone feeding the Uformer-style DenoiseHead: DINOv2 ViT-S/14 with 4 registers (frozen), blocks
# 3/6/9/12 -> decoder -> residual, Charbonnier loss (eps 1e-3).
# Weights: checkpoints/dinov2_vits14_reg4_pretrain.pth (or --cfg-options model.backbone.init_cfg=None).
model = dict(
    type='dense_adapters.Restorer',
    data_preprocessor=dict(type='dense_adapters.RestorerDataPreprocessor'),
    backbone=dict(type='dense_adapters.RegViT', preset='dinov2_vits14_reg4', out_indices=(2, 5, 8, 11),
                  final_norm=True, frozen=True,
                  init_cfg=dict(type='Pretrained', checkpoint='checkpoints/dinov2_vits14_reg4_pretrain.pth',
                                source='dinov2')),
    head=dict(type='dense_adapters.DenoiseHead', in_channels=384, in_index=(0, 1, 2, 3), embed_dim=16),
    loss=dict(type='dense_adapters.CharbonnierLoss', eps=1e-3))
