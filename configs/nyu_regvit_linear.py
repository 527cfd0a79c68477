# NYU Depth v2 "lin. 1" probe of DINOv2 ViT-S/14 with 4 registers (DINOv2 / Registers paper protocol): frozen
# backbone, last block's patch tokens + cls token, bilinear x4, 256 uniform depth bins with linear
# normalisation, depth = expectation over the bin centres; depth range 1e-3..10 m.
#   python tools/train.py configs/nyu_regvit_linear.py [--data-root data/nyu]
#   python tools/test.py configs/nyu_regvit_linear.py CKPT
# Weights: checkpoints/dinov2_vits14_reg4_pretrain.pth (--cfg-options model.backbone.init_cfg.checkpoint=PATH).
# Data layout and evaluation protocol: configs/_base_/nyu_depth.py and docs/depth.md.
_base_ = ['mmseg::_base_/default_runtime.py', './_base_/nyu_depth.py', './_base_/regvit_depth_38k.py']
custom_imports = dict(imports=['dense_adapters.models', 'dense_adapters.evaluation'], allow_failed_imports=False)
