# VideoUformer-S (every block attends) for video denoising on DAVIS 2017, sigma 30: 7 noisy frames in, 7 out.
#   python tools/train.py configs/video-uformer-s_1xb8-100k_davis-sigma30-t7-128x128.py [--data-root data/DAVIS]
#   python tools/test.py  configs/video-uformer-s_1xb8-100k_davis-sigma30-t7-128x128.py CKPT [--data-root DIR]
# Total batch 8 clips on 1 GPU; on N GPUs: --cfg-options train_dataloader.batch_size=8/N.
# Older name: configs/davis_video_denoise_s.py (an alias of this file). Guide: docs/denoising.md.
_base_ = [
    './_base_/default_runtime.py', './_base_/models/video-uformer_restorer.py',
    './_base_/datasets/davis-sigma30-t7-128x128.py', './_base_/schedules/video-uformer-davis_100k.py'
]
model = dict(generator=dict(preset='S', skip_mode=None))
