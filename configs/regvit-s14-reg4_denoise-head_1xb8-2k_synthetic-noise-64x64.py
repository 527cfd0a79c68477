# A frozen DINOv2 ViT-S/14 with 4 registers feeding the Uformer-style DenoiseHead (blocks 3/6/9/12 -> decoder
# -> residual); synthetic noise (see _base_/datasets/synthetic-noise-64x64.py).
#   python tools/train.py configs/regvit-s14-reg4_denoise-head_1xb8-2k_synthetic-noise-64x64.py
# Total batch 8 on 1 GPU or CPU; on N GPUs: --cfg-options train_dataloader.batch_size=8/N.
# Older name: configs/denoise_synthetic_dinov2_s14_reg4.py (an alias of this file).
_base_ = [
    './_base_/default_runtime.py', './_base_/models/regvit-s14-reg4_denoise-head.py',
    './_base_/datasets/synthetic-noise-64x64.py', './_base_/schedules/uformer-synthetic_2k.py'
]
train_dataloader = dict(batch_size=8)
