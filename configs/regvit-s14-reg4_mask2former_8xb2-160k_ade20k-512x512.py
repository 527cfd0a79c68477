# Mask2Former on DINOv2 ViT-S/14 with 4 registers, fine-tuned: ViTDet simple feature pyramid from the last block,
# mmseg's ADE20K Mask2Former head and 160k schedule (backbone lr x0.1), 512x512 crops.
# Total batch 16 = 8 GPUs x 2 images; on N GPUs keep 16 in all: --cfg-options train_dataloader.batch_size=16/N.
#   bash tools/dist_train.sh configs/regvit-s14-reg4_mask2former_8xb2-160k_ade20k-512x512.py 8
# Patch 14: batches are padded bottom/right to 532 = 38 x 14 (ignored labels) and test images to a multiple of 28, so
# the 38x38 patch grid covers the input exactly and every pyramid level (152/76/38/19, strides 3.5/7/14/28) is exact.
# README name: configs/ade20k_dinov2_vits14_reg4_m2f.py (an alias of this file).
_base_ = [
    './_base_/default_runtime.py', './_base_/models/vit-sfp_mask2former.py',
    './_base_/datasets/ade20k_mask2former-512x512.py', './_base_/schedules/mask2former-adamw_160k.py'
]
model = dict(
    data_preprocessor=dict(size=(532, 532), test_cfg=dict(size_divisor=28)),
    backbone=dict(
        preset='dinov2_vits14_reg4',
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/dinov2_vits14_reg4_pretrain.pth', source='dinov2')),
    neck=dict(in_channels=384))
