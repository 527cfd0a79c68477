# ImageNet-1k for DINO/DINOv2's k-NN evaluation: the bank is train/ and the scored split val/, both with the
# evaluation transform (resize 256 bicubic + centre crop 224), 256 images per batch (DINOv2's default).
dataset_type = 'dense_adapters.ImageFolderDataset'
data_root = 'data/imagenet'
test_pipeline = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow', color_type='color_ignore_orientation'),
    dict(type='dense_adapters.TimmClsTransform', input_size=224, crop_pct=0.875, interpolation='bicubic'),
    dict(type='dense_adapters.PackClsInputs'),
]
test_dataloader = dict(
    batch_size=256, num_workers=8, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix=dict(img_path='val'), class_dir='train',
                 pipeline=test_pipeline, test_mode=True))
test_evaluator = dict(type='dense_adapters.TopKAccuracy', topk=(1, 5))
