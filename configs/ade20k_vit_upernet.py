# No-register baseline of ade20k_regvit_upernet.py: DINOv2 ViT-S/14 + UPerNet.
_base_ = [
    'mmseg::_base_/datasets/ade20k.py', 'mmseg::_base_/default_runtime.py',
    './_base_/regvit_upernet_40k.py'
]
custom_imports = dict(imports=['dense_adapters.models'], allow_failed_imports=False)
model = dict(backbone=dict(
    preset='dinov2_vits14',
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/dinov2_vits14_pretrain.pth', source='dinov2')))
