# SkipAt without registers (the paper's setting): DINOv2 ViT-S/14, blocks 3..8 skip attention, UPerNet.
_base_ = [
    'mmseg::_base_/datasets/ade20k.py', 'mmseg::_base_/default_runtime.py',
    './_base_/regvit_upernet_40k.py'
]
custom_imports = dict(imports=['dense_adapters.models'], allow_failed_imports=False)
model = dict(backbone=dict(
    preset='dinov2_vits14',
    skip_layers=(3, 4, 5, 6, 7, 8),
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/dinov2_vits14_pretrain.pth', source='dinov2')))
