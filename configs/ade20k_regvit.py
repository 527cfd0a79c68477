# ADE20K linear probe of DINOv2 ViT-S/14 with 4 registers (Registers paper, Table 2 protocol), 512x512 crops.
#   python tools/train.py configs/ade20k_regvit.py [--amp] [--data-root data/ade/ADEChallengeData2016]
# Weights: the DINOv2 checkpoint dinov2_vits14_reg4_pretrain.pth in checkpoints/ (any path or URL works:
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH).
_base_ = [
    'mmseg::_base_/datasets/ade20k.py', 'mmseg::_base_/default_runtime.py',
    './_base_/regvit_linear_40k.py'
]
custom_imports = dict(imports=['dense_adapters.models'], allow_failed_imports=False)
train_dataloader = dict(batch_size=8)
