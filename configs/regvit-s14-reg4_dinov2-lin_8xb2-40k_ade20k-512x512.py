# DINOv2's "lin." ADE20K probe on DINOv2 ViT-S/14 with 4 registers (the Registers paper's segmentation protocol):
# frozen backbone, last block's patch tokens after the final norm, BN + 1x1 conv, 512x512 crops, 40k iterations,
# sliding-window test. Every setting, its source and the published numbers: docs/protocols.md.
#   python tools/train.py configs/regvit-s14-reg4_dinov2-lin_8xb2-40k_ade20k-512x512.py [--amp] [--data-root DIR]
#   bash tools/dist_train.sh configs/regvit-s14-reg4_dinov2-lin_8xb2-40k_ade20k-512x512.py 8
# Total batch 16 = 8 GPUs x 2 images. On N GPUs keep 16 in all (the lr and SyncBN's statistics assume it):
#   --cfg-options train_dataloader.batch_size=$((16 / N))
# Weights: DINOv2's dinov2_vits14_reg4_pretrain.pth in checkpoints/ (any path or URL:
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH). README name: configs/ade20k_regvit.py (an alias).
_base_ = [
    './_base_/default_runtime.py', './_base_/models/regvit-s14-reg4_dinov2-lin.py',
    './_base_/datasets/ade20k_dinov2-512x512.py', './_base_/schedules/dinov2-seg-linear_40k.py'
]
train_dataloader = dict(batch_size=2)
