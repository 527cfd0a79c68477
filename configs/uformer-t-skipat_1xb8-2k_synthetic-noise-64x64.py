# Uformer-T with SkipAt in every decoder block, synthetic noise (see _base_/datasets/synthetic-noise-64x64.py).
#   python tools/train.py configs/uformer-t-skipat_1xb8-2k_synthetic-noise-64x64.py
# Total batch 8 on 1 GPU or CPU; on N GPUs: --cfg-options train_dataloader.batch_size=8/N.
# Older name: configs/denoise_synthetic_uformer_t_skipat.py (an alias of this file).
_base_ = [
    './_base_/default_runtime.py', './_base_/models/uformer_restorer.py',
    './_base_/datasets/synthetic-noise-64x64.py', './_base_/schedules/uformer-synthetic_2k.py'
]
model = dict(generator=dict(skip_mode='parametric'))
train_dataloader = dict(batch_size=8)
