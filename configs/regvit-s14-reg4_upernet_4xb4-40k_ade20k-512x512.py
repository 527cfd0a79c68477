# ADE20K fine-tuning: DINOv2 ViT-S/14 with 4 registers + UPerNet, 512x512 crops, 40k iterations.
# Total batch 16 = 4 GPUs x 4 images; on N GPUs keep 16 in all: --cfg-options train_dataloader.batch_size=16/N.
#   bash tools/dist_train.sh configs/regvit-s14-reg4_upernet_4xb4-40k_ade20k-512x512.py 4
# README name: configs/ade20k_regvit_upernet.py (an alias of this file).
_base_ = [
    './_base_/default_runtime.py', './_base_/models/regvit-s14-reg4_upernet.py',
    './_base_/datasets/ade20k-512x512.py', './_base_/schedules/upernet-adamw_40k.py'
]
train_dataloader = dict(batch_size=4)
