# The embedded video sample (python tools/make_sample_data.py video data/samples), DAVIS 2017's layout and
# protocol (see davis-sigma30-t7-128x128.py) at CPU size: clips of 3 frames, 32x32 crops, batch 4; validation on
# the 2 held-out sequences, whole (12 frames of 128x208), noise sigma 30 fixed per sequence.
data_root = 'data/samples/video'
num_frames = 3
crop_size = 32
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
    batch_size=4, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='dense_adapters.VideoFramesDataset', data_root=data_root, layout='davis', resolution='480p',
                 split='train', num_frames=num_frames, clip_stride=1, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='dense_adapters.VideoFramesDataset', data_root=data_root, layout='davis', resolution='480p',
                 split='val', whole_sequences=True, seed=0, pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = [dict(type='dense_adapters.PSNR'), dict(type='dense_adapters.SSIM')]
test_evaluator = val_evaluator
