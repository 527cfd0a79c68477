# ImageNet-1k for DINOv2's linear evaluation (dinov2/eval/linear.py, dinov2/data/transforms.py), folder layout
#   <data_root>/train/<wnid>/*.JPEG   <data_root>/val/<wnid>/*.JPEG      (any image-folder dataset works)
# train: RandomResizedCrop 224 (scale 0.08-1, bicubic) + horizontal flip, nothing else; eval: resize 256 (bicubic)
# + centre crop 224. Model selection (which head of the grid) never looks at val/: 10 images per class of train/
# (a fixed seeded draw, 10,000 on ImageNet) are held out and the probe trains on the rest. 128 images per GPU.
dataset_type = 'dense_adapters.ImageFolderDataset'
data_root = 'data/imagenet'
load = dict(type='LoadImageFromFile', imdecode_backend='pillow', color_type='color_ignore_orientation')
train_pipeline = [
    load,
    dict(type='dense_adapters.TimmClsTransform', is_training=True, input_size=224, interpolation='bicubic',
         color_jitter=None),
    dict(type='dense_adapters.PackClsInputs'),
]
test_pipeline = [
    load,
    dict(type='dense_adapters.TimmClsTransform', input_size=224, crop_pct=0.875, interpolation='bicubic'),
    dict(type='dense_adapters.PackClsInputs'),
]
train_dataloader = dict(
    batch_size=128, num_workers=8, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix=dict(img_path='train'), subset='rest',
                 heldout_per_class=10, heldout_seed=0, pipeline=train_pipeline))
val_dataloader = dict(  # the held-out split that picks the head
    batch_size=128, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix=dict(img_path='train'), subset='heldout',
                 heldout_per_class=10, heldout_seed=0, pipeline=test_pipeline, test_mode=True))
test_dataloader = dict(  # the reported number: val/ with the head chosen on the held-out split
    batch_size=128, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix=dict(img_path='val'), class_dir='train',
                 pipeline=test_pipeline, test_mode=True))
val_evaluator = dict(type='dense_adapters.LinearProbeAccuracy', topk=(1, 5))
test_evaluator = dict(type='dense_adapters.LinearProbeAccuracy', topk=(1, 5), use_selected=True)
