# Uformer-S with SkipAt: every decoder block skips window attention and reuses the attention output of the
# encoder block at the same level through SkipAt's parametric function (Phi + Linear to the decoder width).
#   python tools/train.py configs/sidd_uformer_s_skipat.py [--data-root data/SIDD]
_base_ = ['./_base_/denoise_runtime.py', './_base_/denoise_sidd.py']
model = dict(generator=dict(preset='S', skip_mode='parametric'))
