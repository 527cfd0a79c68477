# Mask2Former on a frozen DINOv2 ViT-S/14 with 4 registers: the pyramid is built from 4 evenly spaced blocks
# (3, 6, 9, 12; the shallowest at 4x), only the neck and the Mask2Former head train. Head, schedule, 512x512 crops
# and padding to multiples of 28 as regvit-s14-reg4_mask2former_8xb2-160k_ade20k-512x512.py.
# Total batch 16 = 8 GPUs x 2 images; on N GPUs keep 16 in all: --cfg-options train_dataloader.batch_size=16/N.
# README name: configs/ade20k_dinov2_vits14_reg4_m2f_frozen.py (an alias of this file).
_base_ = [
    './_base_/default_runtime.py', './_base_/models/vit-sfp_mask2former.py',
    './_base_/datasets/ade20k_mask2former-512x512.py', './_base_/schedules/mask2former-adamw_160k.py'
]
model = dict(
    data_preprocessor=dict(size=(532, 532), test_cfg=dict(size_divisor=28)),
    backbone=dict(
        preset='dinov2_vits14_reg4',
        frozen=True,
        out_indices=(2, 5, 8, 11),
        drop_path_rate=0.0,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/dinov2_vits14_reg4_pretrain.pth', source='dinov2')),
    neck=dict(in_channels=384, in_index=(0, 1, 2, 3)))
