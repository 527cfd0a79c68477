# Uformer-T on SIDD sRGB (see _base_/denoise_sidd.py for the data layout and schedule).
#   python tools/train.py configs/sidd_uformer_t.py [--data-root data/SIDD]
_base_ = ['./_base_/denoise_runtime.py', './_base_/denoise_sidd.py']
model = dict(generator=dict(preset='T'))
