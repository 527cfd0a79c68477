# DINOv2's linear-probe grid on a frozen RegViT (DINOv2 ViT-S/14 with 4 registers here; leaves change the preset
# and the checkpoint): 13 learning rates x last {1, 4} blocks' cls tokens x {without, with} the patch-token mean
# = 52 linear heads trained together on features computed once per batch. Registers are never averaged in.
model = dict(
    type='dense_adapters.LinearProbeClassifier',
    data_preprocessor=dict(type='dense_adapters.ClsDataPreprocessor'),  # ImageNet mean/std
    backbone=dict(
        type='dense_adapters.RegViT',
        preset='dinov2_vits14_reg4',
        frozen=True,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/dinov2_vits14_reg4_pretrain.pth', source='dinov2')),
    num_classes=1000,
    n_last_blocks=(1, 4),
    avgpool=(False, True),
    learning_rates=(1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1),
    head_init_std=0.01)
