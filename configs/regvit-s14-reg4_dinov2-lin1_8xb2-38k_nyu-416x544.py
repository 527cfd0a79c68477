# DINOv2's "lin. 1" NYU Depth v2 probe on DINOv2 ViT-S/14 with 4 registers (the Registers paper's depth
# protocol): frozen backbone, last block without the final norm, cls token concatenated, bilinear x4, 256 uniform
# bins, 416x544 crops, 38.4k iterations. Every setting, its source and the published numbers: docs/protocols.md.
#   python tools/train.py configs/regvit-s14-reg4_dinov2-lin1_8xb2-38k_nyu-416x544.py [--data-root data/nyu]
#   python tools/test.py configs/regvit-s14-reg4_dinov2-lin1_8xb2-38k_nyu-416x544.py CKPT
# Total batch 16 = 8 GPUs x 2 images. On N GPUs keep 16 in all: --cfg-options train_dataloader.batch_size=$((16/N))
# DINOv2's gradient loss as written is 0 only at <= 2 images per GPU (with more it compares images and warns):
# there, also pass model.decode_head.loss_decode.1.loss_weight=0 to keep the reference's effective loss.
# Weights: checkpoints/dinov2_vits14_reg4_pretrain.pth. README name: configs/nyu_regvit_linear.py (an alias).
_base_ = [
    './_base_/default_runtime.py', './_base_/models/regvit-s14-reg4_dinov2-depth-linear.py',
    './_base_/datasets/nyu_dinov2-416x544.py', './_base_/schedules/dinov2-depth_38k.py'
]
train_dataloader = dict(batch_size=2)
