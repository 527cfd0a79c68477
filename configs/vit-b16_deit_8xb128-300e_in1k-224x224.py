# ViT-B/16 (DeiT-B), the SkipAt baseline, trained from scratch with DeiT's recipe on ImageNet-1k: 8 GPUs x 128 =
# 1024 images per step (lr 5e-4 x 1024 / 512, scaled with the real total batch), 300 epochs, 224x224.
#   python tools/train.py configs/vit-b16_deit_8xb128-300e_in1k-224x224.py [--data-root data/imagenet] [--amp]
#   bash tools/dist_train.sh configs/vit-b16_deit_8xb128-300e_in1k-224x224.py 8
_base_ = [
    './_base_/models/vit-s16_deit.py', './_base_/datasets/in1k-224x224_deit.py', './_base_/schedules/deit-adamw_300e.py',
    './_base_/default_runtime.py'
]
model = dict(backbone=dict(preset='vit_base_patch16_224'))
