# DAVIS 2017 video denoising, Gaussian noise sigma = 30 on the 0..255 scale (SkipAt's video task; the protocol of
# FastDVDnet / VRT: noise N(0, sigma^2) added to the float frames, unclipped). Layout (DAVIS-2017-trainval-480p):
#   data/DAVIS/JPEGImages/480p/<sequence>/00000.jpg ...   and   data/DAVIS/ImageSets/2017/{train,val}.txt
# Train: clips of 7 frames (every start, stride 1) of the 60 'train' sequences, the same random 128x128 crop and
# flips/transpose for all 7 frames, fresh noise each time. Validation: the 30 'val' sequences, whole (at most 85
# frames, as FastDVDnet scores), noise fixed per sequence (seed 0 + index); PSNR/SSIM on 0..255 RGB per frame,
# averaged per sequence, then over sequences (each sequence's values are logged).
# Published DAVIS numbers use the 30 test-dev sequences (DAVIS-2017-test-dev-480p, same layout):
#   --cfg-options test_dataloader.dataset.data_root=data/DAVIS-test-dev test_dataloader.dataset.split=None
# The embedded sample has this layout too: --data-root data/samples/video (tools/make_sample_data.py video).
data_root = 'data/DAVIS'
num_frames = 7
crop_size = 128
sigma = 30.0
noise = dict(type='dense_adapters.AddSyntheticNoise', mode='gaussian', sigma=sigma, clip=False, quantize=False)
train_pipeline = [
    dict(type='dense_adapters.LoadVideoFrames'),
    dict(type='dense_adapters.PairedRandomCrop', crop_size=crop_size),
    dict(type='dense_adapters.PairedRandomFlip', prob=0.5),
    noise,
    dict(type='dense_adapters.PackRestorationInputs'),
]
test_pipeline = [dict(type='dense_adapters.LoadVideoFrames'), noise, dict(type='dense_adapters.PackRestorationInputs')]
train_dataloader = dict(
    batch_size=8, num_workers=8, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='dense_adapters.VideoFramesDataset', data_root=data_root, layout='davis', resolution='480p',
                 split='train', num_frames=num_frames, clip_stride=1, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='dense_adapters.VideoFramesDataset', data_root=data_root, layout='davis', resolution='480p',
                 split='val', whole_sequences=True, max_frames=85, seed=0, pipeline=test_pipeline,
                 test_mode=True))
test_dataloader = val_dataloader
val_evaluator = [dict(type='dense_adapters.PSNR'), dict(type='dense_adapters.SSIM')]
test_evaluator = val_evaluator
