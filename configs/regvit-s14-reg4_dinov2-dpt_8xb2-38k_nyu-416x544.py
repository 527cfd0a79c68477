# DINOv2's DPT NYU Depth v2 probe on DINOv2 ViT-S/14 with 4 registers: frozen backbone, blocks 3, 6, 9, 12
# without the final norm, DPT decoder ("project" readout on the cls token; registers never reach the head).
#   python tools/train.py configs/regvit-s14-reg4_dinov2-dpt_8xb2-38k_nyu-416x544.py
# Total batch 16 = 8 GPUs x 2 (on N GPUs: see the lin. 1 config). README name: configs/nyu_regvit_dpt.py.
_base_ = [
    './_base_/default_runtime.py', './_base_/models/regvit-s14-reg4_dinov2-dpt.py',
    './_base_/datasets/nyu_dinov2-416x544.py', './_base_/schedules/dinov2-depth_38k.py'
]
train_dataloader = dict(batch_size=2)
