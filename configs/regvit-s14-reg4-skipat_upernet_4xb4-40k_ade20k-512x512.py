# SkipAt on ADE20K: as regvit-s14-reg4_upernet_4xb4-40k_ade20k-512x512.py, with blocks 3..8 (0-based) skipping
# self-attention; their attention output is SkipAt's parametric function of the previous block's
# (Venkataramanan et al., Sec. 4). Total batch 16 = 4 GPUs x 4 (on N GPUs: train_dataloader.batch_size=16/N).
# README name: configs/ade20k_regvit_skipat_upernet.py (an alias of this file).
_base_ = [
    './_base_/default_runtime.py', './_base_/models/regvit-s14-reg4_upernet.py',
    './_base_/datasets/ade20k-512x512.py', './_base_/schedules/upernet-adamw_40k.py'
]
model = dict(backbone=dict(skip_layers=(3, 4, 5, 6, 7, 8), skip_mode='parametric'))
train_dataloader = dict(batch_size=4)
