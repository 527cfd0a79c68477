# ADE20K fine-tuning: DINOv2 ViT-S/14 with 4 registers + UPerNet, 512x512 crops.
_base_ = [
    'mmseg::_base_/datasets/ade20k.py', 'mmseg::_base_/default_runtime.py',
    './_base_/regvit_upernet_40k.py'
]
custom_imports = dict(imports=['dense_adapters.models'], allow_failed_imports=False)
