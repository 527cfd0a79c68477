# A tiny VideoUformer with SkipAt (identity: decoder blocks reuse the encoder's attention probabilities),
# trained on the embedded video sample on a CPU in a few minutes (DAVIS protocol, toy size); docs/denoising.md
# reports what it reaches (benchmarks/video_denoise.py runs it side by side with the other variant).
#   python tools/make_sample_data.py video data/samples
#   python tools/train.py configs/video-uformer-tiny-skipat_1xb4-0.2k_video-sample-sigma30-t3-32x32.py
# Total batch 4 clips of 3x32x32, 1 process.
_base_ = [
    './_base_/default_runtime.py', './_base_/models/video-uformer_restorer.py',
    './_base_/datasets/video-sample-sigma30-t3-32x32.py', './_base_/schedules/video-uformer-sample_0.2k.py'
]
model = dict(generator=dict(preset=None, embed_dim=8, depths=(1, 1, 1), win_size=(2, 4, 4), drop_path_rate=0.0,
                            clip_len=3, clip_overlap=1, skip_mode='identity'))
