# Mask2Former on a frozen DINOv3 ViT-S/16, as the DINOv3 paper trains its segmentation head (there with ViT-Adapter
# on the 7B model): the pyramid is built from 4 evenly spaced blocks (3, 6, 9, 12; the shallowest at 4x), only the
# neck and the head train. Head, schedule and 512x512 crops as dinov3-vits16_mask2former_8xb2-160k_ade20k-512x512.py.
# Total batch 16 = 8 GPUs x 2 images; on N GPUs keep 16 in all: --cfg-options train_dataloader.batch_size=16/N.
# README name: configs/ade20k_dinov3_vits16_m2f_frozen.py (an alias of this file).
_base_ = [
    './_base_/default_runtime.py', './_base_/models/vit-sfp_mask2former.py',
    './_base_/datasets/ade20k_mask2former-512x512.py', './_base_/schedules/mask2former-adamw_160k.py'
]
model = dict(
    backbone=dict(
        preset='dinov3_vits16',
        frozen=True,
        out_indices=(2, 5, 8, 11),
        drop_path_rate=0.0,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/dinov3_vits16_pretrain_lvd1689m-08c60483.pth',
                      source='dinov3')),
    neck=dict(in_channels=384, in_index=(0, 1, 2, 3)))
