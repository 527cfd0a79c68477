# VideoUformer-S with SkipAt (identity, the paper's choice for video): every decoder block computes no
# attention and mixes its tokens with the attention probabilities of the encoder block at the same level.
# skip_mode='parametric' reuses the encoder's attention output through SkipAt's Phi instead.
#   python tools/train.py configs/video-uformer-s-skipat_1xb8-100k_davis-sigma30-t7-128x128.py [--data-root DIR]
# Total batch 8 clips on 1 GPU; on N GPUs: --cfg-options train_dataloader.batch_size=8/N.
# Older name: configs/davis_video_denoise_s_skipat.py (an alias of this file). Guide: docs/denoising.md.
_base_ = [
    './_base_/default_runtime.py', './_base_/models/video-uformer_restorer.py',
    './_base_/datasets/davis-sigma30-t7-128x128.py', './_base_/schedules/video-uformer-davis_100k.py'
]
model = dict(generator=dict(preset='S', skip_mode='identity'))
