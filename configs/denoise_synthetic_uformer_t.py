# Uformer-T on clean photos with synthetic Gaussian noise (see _base_/denoise_synthetic.py for the data).
#   python tools/make_sample_data.py denoise data/samples
#   python tools/train.py configs/denoise_synthetic_uformer_t.py [--data-root DIR_WITH_train/gt_AND_val/gt]
_base_ = ['./_base_/denoise_runtime.py', './_base_/denoise_synthetic.py']
optim_wrapper = dict(optimizer=dict(lr=1e-3))
default_hooks = dict(checkpoint=dict(interval=500), logger=dict(interval=20))
