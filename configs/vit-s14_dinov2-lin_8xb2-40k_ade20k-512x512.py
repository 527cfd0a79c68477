# DINOv2's "lin." ADE20K probe on DINOv2 ViT-S/14 without registers (the baseline of
# regvit-s14-reg4_dinov2-lin_8xb2-40k_ade20k-512x512.py; DINOv2's own published setting). docs/protocols.md.
# Total batch 16 = 8 GPUs x 2 (on N GPUs: --cfg-options train_dataloader.batch_size=$((16 / N))).
# Weights: checkpoints/dinov2_vits14_pretrain.pth. README name: configs/ade20k_vit.py (an alias).
_base_ = [
    './_base_/default_runtime.py', './_base_/models/regvit-s14-reg4_dinov2-lin.py',
    './_base_/datasets/ade20k_dinov2-512x512.py', './_base_/schedules/dinov2-seg-linear_40k.py'
]
model = dict(backbone=dict(
    preset='dinov2_vits14',
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/dinov2_vits14_pretrain.pth', source='dinov2')))
train_dataloader = dict(batch_size=2)
