# ImageNet-1k with DeiT's data recipe (deit/main.py + datasets.py, through timm's create_transform):
# RandomResizedCrop 224 (bicubic) + flip + RandAugment rand-m9-mstd0.5-inc1 (which switches colour jitter off),
# repeated augmentation (3 copies of each image per epoch, on different GPUs); random erasing (0.25, per-pixel) and
# Mixup 0.8 / CutMix 1.0 run on the batch in the model's data preprocessor. Eval: resize 256 + centre crop 224.
# 128 images per GPU, drop_last (Mixup needs even batches); evaluation 192 per GPU (DeiT's 1.5x).
dataset_type = 'dense_adapters.ImageFolderDataset'
data_root = 'data/imagenet'
load = dict(type='LoadImageFromFile', imdecode_backend='pillow', color_type='color_ignore_orientation')
train_pipeline = [
    load,
    dict(type='dense_adapters.TimmClsTransform', is_training=True, input_size=224, interpolation='bicubic',
         color_jitter=0.4, auto_augment='rand-m9-mstd0.5-inc1'),
    dict(type='dense_adapters.PackClsInputs'),
]
test_pipeline = [
    load,
    dict(type='dense_adapters.TimmClsTransform', input_size=224, crop_pct=0.875, interpolation='bicubic'),
    dict(type='dense_adapters.PackClsInputs'),
]
train_dataloader = dict(
    batch_size=128, num_workers=10, persistent_workers=True, drop_last=True,
    sampler=dict(type='dense_adapters.RepeatAugSampler', num_repeats=3, shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix=dict(img_path='train'),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=192, num_workers=10, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix=dict(img_path='val'), class_dir='train',
                 pipeline=test_pipeline, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='dense_adapters.TopKAccuracy', topk=(1, 5))
test_evaluator = val_evaluator
