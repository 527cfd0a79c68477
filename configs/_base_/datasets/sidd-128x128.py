# SIDD-Medium sRGB (real noise), as the Uformer paper trains: 128x128 patches with the 8 flips/rotations;
# validation on SIDD's 1280 validation blocks (PSNR/SSIM on 0..255 RGB). Data under data/SIDD (or --data-root):
#   data/SIDD/SIDD_Medium_Srgb/Data/<scene>/{NOISY,GT}_SRGB_*.PNG   (train; or Uformer's pre-cropped patches:
#       --cfg-options train_dataloader.dataset.dataset.subdir=train train_dataloader.dataset.dataset.noisy_dir=input
#       train_dataloader.dataset.dataset.gt_dir=groundtruth)
#   data/SIDD/ValidationNoisyBlocksSrgb.mat, data/SIDD/ValidationGtBlocksSrgb.mat      (val/test)
data_root = 'data/SIDD'
crop_size = 128
train_pipeline = [
    dict(type='dense_adapters.LoadImagePair'),
    dict(type='dense_adapters.PairedRandomCrop', crop_size=crop_size),
    dict(type='dense_adapters.PairedRandomFlip', prob=0.5),
    dict(type='dense_adapters.PackRestorationInputs'),
]
test_pipeline = [dict(type='dense_adapters.LoadImagePair'), dict(type='dense_adapters.PackRestorationInputs')]

train_dataloader = dict(
    batch_size=32, num_workers=8, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='RepeatDataset', times=100,
                 dataset=dict(type='dense_adapters.DenoisePairDataset', data_root=data_root,
                              subdir='SIDD_Medium_Srgb', pipeline=train_pipeline)))
val_dataloader = dict(
    batch_size=8, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='dense_adapters.SIDDValMatDataset', data_root=data_root, pipeline=test_pipeline,
                 test_mode=True))
test_dataloader = val_dataloader
val_evaluator = [dict(type='dense_adapters.PSNR'), dict(type='dense_adapters.SSIM')]
test_evaluator = val_evaluator

