# DINOv2's "lin. 4" NYU Depth v2 probe on DINOv2 ViT-S/14 with 4 registers: as "lin. 1"
# (regvit-s14-reg4_dinov2-lin1_8xb2-38k_nyu-416x544.py) but blocks 3, 6, 9, 12 (0-based 2, 5, 8, 11), each
# [patch | cls] without the final norm, resized to 4x the grid and concatenated (3072 channels). docs/protocols.md.
# Total batch 16 = 8 GPUs x 2 (on N GPUs: see the lin. 1 config). README name: configs/nyu_regvit_linear4.py.
_base_ = [
    './_base_/default_runtime.py', './_base_/models/regvit-s14-reg4_dinov2-depth-linear.py',
    './_base_/datasets/nyu_dinov2-416x544.py', './_base_/schedules/dinov2-depth_38k.py'
]
model = dict(
    backbone=dict(out_indices=(2, 5, 8, 11)),
    decode_head=dict(in_channels=[384, 384, 384, 384], in_index=[0, 1, 2, 3]))
train_dataloader = dict(batch_size=2)
