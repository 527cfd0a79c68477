# DINOv2 ViT-S/14 without registers (DINOv2 README: 79.0 top-1), frozen: DINO's weighted k-NN on ImageNet-1k (bank
# train/, scored val/, normalised cls tokens, T = 0.07; top-1/top-5 for k = 20, also k = 10/100/200), 224x224.
# Nothing is trained. Weights: checkpoints/dinov2_vits14_pretrain.pth (or --cfg-options
# model.backbone.init_cfg.checkpoint=PATH_OR_URL; another backbone: model.backbone.preset=dinov2_vitl14_reg4 ...).
#   python tools/test.py configs/vit-s14_knn-20nn_in1k-224x224.py [--data-root data/imagenet]
#   torchrun --nproc_per_node 8 tools/test.py configs/vit-s14_knn-20nn_in1k-224x224.py --launcher pytorch
_base_ = [
    './_base_/models/regvit-s14-reg4_knn.py', './_base_/datasets/in1k-224x224_knn.py', './_base_/schedules/knn-eval.py',
    './_base_/default_runtime.py'
]
model = dict(backbone=dict(preset='dinov2_vits14', init_cfg=dict(checkpoint='checkpoints/dinov2_vits14_pretrain.pth')))
