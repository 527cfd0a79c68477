# DINOv3's linear NYU Depth v2 probe on the distilled DINOv3 ViT-S/16 (model card: RMSE 0.403), as DINOv3's
# dinov3/eval/depth/configs/config-nyu.yaml and its evaluation code set it: frozen backbone, last block after the
# final norm, patch tokens, BatchNorm, 256 bins, SigLoss, 416x544 crops, WarmupOneCycleLR with beta1 cycling.
#   python tools/train.py configs/dinov3-vits16_dinov3-lin_4xb4-38k_nyu-416x544.py [--data-root data/nyu]
# Total batch 16 = 4 GPUs x 4. On N GPUs keep 16 in all: --cfg-options train_dataloader.batch_size=$((16 / N))
# Short name: configs/nyu_dinov3_vits16_linear.py (an alias).
_base_ = [
    './_base_/default_runtime.py', './_base_/models/dinov3-vits16_dinov3-depth-linear.py',
    './_base_/datasets/nyu_dinov3-416x544.py', './_base_/schedules/dinov3-depth_38k.py'
]
train_dataloader = dict(batch_size=4)
