# Uformer-S on SIDD sRGB (see _base_/datasets/sidd-128x128.py for the data layout).
#   python tools/train.py configs/uformer-s_1xb32-750k_sidd-128x128.py [--data-root data/SIDD]
# Total batch 32 on 1 GPU (Uformer's); on N GPUs keep 32 in all: --cfg-options train_dataloader.batch_size=32/N.
# Older name: configs/sidd_uformer_s.py (an alias of this file).
_base_ = [
    './_base_/default_runtime.py', './_base_/models/uformer_restorer.py', './_base_/datasets/sidd-128x128.py',
    './_base_/schedules/uformer-sidd_750k.py'
]
# shift_from_size=128: the window shifts are fixed from the 128 training patches, as the authors' model decides
# them (their SIDD test at 256x256 never shifts in the bottleneck); their released weights load with
# tools/test.py <this config> Uformer_S.pth (docs/denoising.md)
model = dict(generator=dict(preset='S', shift_from_size=128))
train_dataloader = dict(batch_size=32)
