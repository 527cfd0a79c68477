# NYU Depth v2 as DINOv3's depth evaluation reads it (dinov3/eval/depth/configs/config-nyu.yaml transforms, with
# transforms.py make_depth_train_transforms and config.py TrainTransformConfig for what the yaml leaves at its
# defaults): the NYU crop [45:472, 43:608] (fixed_crop: NYU), rotation by U(-2.5, 2.5) degrees with probability 0.5,
# flip, a 416x544 random crop (random_crop), gamma / brightness / colour jitter with probability 0.5 on 0..255 values
# (gamma 0.9-1.1, brightness 0.75-1.25 (brightness_range), colour 0.9-1.1). Test: the full 480x640 image (fixed_crop:
# FULL), flip-averaged (use_tta), Eigen crop (eval_mask: NYU_EIGEN), 1e-3 < gt < 10 m. 4 images per GPU (bs: 4,
# n_gpus: 4: 16 in all).
dataset_type = 'NYUDataset'
data_root = 'data/nyu'
crop_size = (416, 544)
meta_keys = ('img_path', 'depth_map_path', 'ori_shape', 'img_shape', 'pad_shape', 'scale_factor', 'flip',
             'flip_direction', 'category_id')
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3),
    dict(type='dense_adapters.FixedCrop', top=45, bottom=472, left=43, right=608),
    dict(type='RandomRotate', prob=0.5, degree=2.5, pad_val=0, seg_pad_val=0),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='dense_adapters.GammaBrightnessColorAug', prob=0.5, gamma_range=(0.9, 1.1),
         brightness_range=(0.75, 1.25), color_range=(0.9, 1.1)),
    dict(type='PackSegInputs', meta_keys=meta_keys),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3),
    dict(type='PackSegInputs', meta_keys=meta_keys),
]
train_dataloader = dict(
    batch_size=4,
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
