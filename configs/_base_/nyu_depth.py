# NYU Depth v2 in mmseg's layout (data/nyu: images/{train,test}/*.jpg, annotations/{train,test}/*.png, uint16 mm)
# with this toolkit's protocol (docs/depth.md): 420x560 crops (patch-14 multiples), rotation/flip/colour jitter,
# depth range 1e-3..10 m, Eigen crop gt[45:471, 41:601] on 480x640 ground truth, predictions clipped to the range,
# metrics averaged per image (the common protocol) and pixel-pooled ("*_pooled").
# A tiny real sample: python tools/make_sample_data.py nyu data/samples  (then --data-root data/samples/nyu).
dataset_type = 'NYUDataset'
data_root = 'data/nyu'
crop_size = (420, 560)  # multiples of the 14-px patch (DINOv2 trains on 416 x 544 crops)
meta_keys = ('img_path', 'depth_map_path', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor', 'flip',
             'flip_direction', 'category_id')
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3),
    dict(type='RandomRotate', prob=0.5, degree=2.5, seg_pad_val=0),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='PhotoMetricDistortion', brightness_delta=16, contrast_range=(0.8, 1.2),
         saturation_range=(0.8, 1.2), hue_delta=9),
    dict(type='PackSegInputs', meta_keys=meta_keys),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2000, 480), keep_ratio=True),
    dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3),
    dict(type='PackSegInputs', meta_keys=meta_keys),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/train', depth_map_path='annotations/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        test_mode=True,
        data_prefix=dict(img_path='images/test', depth_map_path='annotations/test'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='dense_adapters.DepthEvalMetric',
    min_depth=1e-3,
    max_depth=10.0,
    crop='eigen',
    clip_pred=True,
    averaging=('image', 'pixel'))
test_evaluator = val_evaluator
