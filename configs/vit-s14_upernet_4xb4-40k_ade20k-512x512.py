# No-register baseline of regvit-s14-reg4_upernet_4xb4-40k_ade20k-512x512.py: DINOv2 ViT-S/14 + UPerNet.
# Total batch 16 = 4 GPUs x 4 (on N GPUs: train_dataloader.batch_size=16/N).
# README name: configs/ade20k_vit_upernet.py (an alias of this file).
_base_ = [
    './_base_/default_runtime.py', './_base_/models/regvit-s14-reg4_upernet.py',
    './_base_/datasets/ade20k-512x512.py', './_base_/schedules/upernet-adamw_40k.py'
]
model = dict(backbone=dict(
    preset='dinov2_vits14',
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/dinov2_vits14_pretrain.pth', source='dinov2')))
train_dataloader = dict(batch_size=4)
