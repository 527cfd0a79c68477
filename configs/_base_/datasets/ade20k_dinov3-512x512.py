# ADE20K as DINOv3's linear probe reads it (dinov3/eval/segmentation/transforms.py with config-ade20k-linear-
# training.yaml): the short side rescaled to 512 x U(0.5, 2.0), a 512x512 crop (no class over 75%, 10 tries),
# flip 0.5, photometric distortion, padding to 512. DINOv3's distortion draws the hue factor in [-0.5, 0.5] of a
# turn: mmseg's hue_delta=90 (of OpenCV's 180) is that full circle; its brightness (32), contrast and saturation
# ranges (0.5-1.5) are mmseg's defaults, but DINOv3 applies saturation as torchvision's blend with the grey image
# where mmseg scales HSV saturation (docs/protocols.md). Test: short side 512, single scale, no flip.
# 4 images per GPU (config-ade20k-linear-training.yaml: bs 4, n_gpus 4 = 16 in all).
dataset_type = 'ADE20KDataset'
data_root = 'data/ade/ADEChallengeData2016'
crop_size = (512, 512)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(99999999, 512), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion', brightness_delta=32, contrast_range=(0.5, 1.5), saturation_range=(0.5, 1.5),
         hue_delta=90),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(99999999, 512), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
