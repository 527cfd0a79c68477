# DINOv2 ViT-S/14 with 4 registers, frozen: DINOv2's linear evaluation on ImageNet-1k (52-head grid, head chosen on
# held-out training images), 8 GPUs x 128 = 1024 images per iteration, 12,500 iterations, 224x224. Learning rates
# scale with the total batch (x batch / 256), so other GPU counts keep the protocol. Weights:
# checkpoints/dinov2_vits14_reg4_pretrain.pth (or --cfg-options model.backbone.init_cfg.checkpoint=PATH_OR_URL).
#   python tools/train.py configs/dinov2-vits14-reg4_linear-grid_8xb128-12500it_in1k-224.py [--data-root data/imagenet] [--amp]
#   python tools/test.py configs/dinov2-vits14-reg4_linear-grid_8xb128-12500it_in1k-224.py work_dirs/dinov2-vits14-reg4_linear-grid_8xb128-12500it_in1k-224/iter_12500.pth
_base_ = [
    './_base_/models/linear-grid_regvit.py', './_base_/datasets/imagenet_linear-eval.py',
    './_base_/schedules/dinov2-linear_12500it.py', './_base_/default_runtime.py'
]
