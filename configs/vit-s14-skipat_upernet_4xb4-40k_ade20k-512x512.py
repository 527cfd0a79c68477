# SkipAt without registers (the paper's setting): DINOv2 ViT-S/14, blocks 3..8 (0-based) skip attention, UPerNet.
# Total batch 16 = 4 GPUs x 4 (on N GPUs: train_dataloader.batch_size=16/N).
# README name: configs/ade20k_vit_skipat_upernet.py (an alias of this file).
_base_ = [
    './_base_/default_runtime.py', './_base_/models/regvit-s14-reg4_upernet.py',
    './_base_/datasets/ade20k-512x512.py', './_base_/schedules/upernet-adamw_40k.py'
]
model = dict(backbone=dict(
    preset='dinov2_vits14',
    skip_layers=(3, 4, 5, 6, 7, 8),
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/dinov2_vits14_pretrain.pth', source='dinov2')))
train_dataloader = dict(batch_size=4)
