# DINOv3's linear ADE20K probe on the distilled DINOv3 ViT-S/16 (model card: 47.0 mIoU): frozen backbone, last
# block after the final norm, patch tokens, dropout + BN + 1x1 conv, 512x512 crops, 40k iterations, sliding-window
# test. Every setting, its source and the published numbers: docs/protocols.md.
#   python tools/train.py configs/dinov3-vits16_dinov3-lin_4xb4-40k_ade20k-512x512.py [--data-root DIR]
# Total batch 16 = 4 GPUs x 4 (the yaml's bs: 4, n_gpus: 4). On N GPUs keep 16 in all: --cfg-options train_dataloader.batch_size=$((16 / N))
# Short name: configs/ade20k_dinov3_vits16_linear.py (an alias).
_base_ = [
    './_base_/default_runtime.py', './_base_/models/dinov3-vits16_dinov3-lin.py',
    './_base_/datasets/ade20k_dinov3-512x512.py', './_base_/schedules/dinov3-seg-linear_40k.py'
]
train_dataloader = dict(batch_size=4)
