# DINOv2 ViT-L/14 without registers (DINOv2 README: 86.3 top-1), frozen: DINOv2's linear evaluation on ImageNet-1k
# (52-head grid, head chosen on held-out training images), 8 GPUs x 128 = 1024 images per iteration, 12,500
# iterations, 224x224. Learning rates scale with the total batch (x batch / 256), so other GPU counts keep the
# protocol. Weights: checkpoints/dinov2_vitl14_pretrain.pth (or --cfg-options
# model.backbone.init_cfg.checkpoint=PATH_OR_URL).
#   python tools/train.py configs/vit-l14_dinov2-linear_8xb128-12.5k_in1k-224x224.py [--data-root data/imagenet] [--amp]
#   python tools/test.py configs/vit-l14_dinov2-linear_8xb128-12.5k_in1k-224x224.py work_dirs/vit-l14_dinov2-linear_8xb128-12.5k_in1k-224x224/iter_12500.pth
_base_ = [
    './_base_/models/regvit-s14-reg4_dinov2-linear.py', './_base_/datasets/in1k-224x224_dinov2-linear.py',
    './_base_/schedules/dinov2-linear-sgd_12.5k.py', './_base_/default_runtime.py'
]
model = dict(backbone=dict(preset='dinov2_vitl14',
                           init_cfg=dict(checkpoint='checkpoints/dinov2_vitl14_pretrain.pth')))
