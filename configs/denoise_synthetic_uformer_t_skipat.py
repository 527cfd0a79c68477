# Uformer-T with SkipAt in every decoder block, synthetic noise (see _base_/denoise_synthetic.py for the data).
#   python tools/train.py configs/denoise_synthetic_uformer_t_skipat.py
_base_ = ['./_base_/denoise_runtime.py', './_base_/denoise_synthetic.py']
model = dict(generator=dict(skip_mode='parametric'))
optim_wrapper = dict(optimizer=dict(lr=1e-3))
default_hooks = dict(checkpoint=dict(interval=500), logger=dict(interval=20))
