# Clean photos with synthetic noise (Gaussian sigma 25 on 0..255 here): any folder of clean images.
# Default data: the bundled-photo sample (python tools/make_sample_data.py denoise data/samples), i.e.
#   data/samples/denoise/train/gt/*.png (train, fresh noise every time) and data/samples/denoise/val/gt/*.png
#   (held out, noise fixed by seed). Poisson-Gaussian noise: AddSyntheticNoise(mode='poisson_gaussian', a=, b=).
# 64x64 crops (the schedule is _base_/schedules/uformer-synthetic_2k.py).
data_root = 'data/samples/denoise'
crop_size = 64
noise = dict(type='dense_adapters.AddSyntheticNoise', mode='gaussian', sigma=25.0)
train_pipeline = [
    dict(type='dense_adapters.LoadImagePair'),
    dict(type='dense_adapters.PairedRandomCrop', crop_size=crop_size),
    noise,
    dict(type='dense_adapters.PairedRandomFlip', prob=0.5),
    dict(type='dense_adapters.PackRestorationInputs'),
]
test_pipeline = [dict(type='dense_adapters.LoadImagePair'), noise, dict(type='dense_adapters.PackRestorationInputs')]
train_dataloader = dict(
    batch_size=8, num_workers=2, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='dense_adapters.SyntheticNoiseDataset', data_root=data_root, img_dir='train/gt',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=1, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='dense_adapters.SyntheticNoiseDataset', data_root=data_root, img_dir='val/gt', seed=0,
                 pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = [dict(type='dense_adapters.PSNR'), dict(type='dense_adapters.SSIM')]
test_evaluator = val_evaluator

