# Mask2Former on DINOv3 ViT-S/16 (4 registers, RoPE), fine-tuned: ViTDet simple feature pyramid from the last block
# (strides 4/8/16/32), mmseg's ADE20K Mask2Former head and 160k schedule (backbone lr x0.1), 512x512 crops.
# The DINOv3 paper trains its Mask2Former on a frozen backbone (with ViT-Adapter): see the -frozen sibling.
# Total batch 16 = 8 GPUs x 2 images; on N GPUs keep 16 in all: --cfg-options train_dataloader.batch_size=16/N.
#   bash tools/dist_train.sh configs/dinov3-vits16_mask2former_8xb2-160k_ade20k-512x512.py 8
# README name: configs/ade20k_dinov3_vits16_m2f.py (an alias of this file).
_base_ = [
    './_base_/default_runtime.py', './_base_/models/vit-sfp_mask2former.py',
    './_base_/datasets/ade20k_mask2former-512x512.py', './_base_/schedules/mask2former-adamw_160k.py'
]
model = dict(
    backbone=dict(
        preset='dinov3_vits16',
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/dinov3_vits16_pretrain_lvd1689m-08c60483.pth',
                      source='dinov3')),
    neck=dict(in_channels=384))
