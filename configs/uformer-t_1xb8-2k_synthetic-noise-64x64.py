# Uformer-T on clean photos with synthetic Gaussian noise (see _base_/datasets/synthetic-noise-64x64.py).
#   python tools/make_sample_data.py denoise data/samples
#   python tools/train.py configs/uformer-t_1xb8-2k_synthetic-noise-64x64.py [--data-root DIR_WITH_train/gt_AND_val/gt]
# Total batch 8 on 1 GPU or CPU; on N GPUs: --cfg-options train_dataloader.batch_size=8/N.
# Older name: configs/denoise_synthetic_uformer_t.py (an alias of this file).
_base_ = [
    './_base_/default_runtime.py', './_base_/models/uformer_restorer.py',
    './_base_/datasets/synthetic-noise-64x64.py', './_base_/schedules/uformer-synthetic_2k.py'
]
train_dataloader = dict(batch_size=8)
