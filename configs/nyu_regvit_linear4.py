# NYU Depth v2 "lin. 4" probe of DINOv2 ViT-S/14 with 4 registers (DINOv2 protocol): as lin. 1
# (configs/nyu_regvit_linear.py) but patch + cls tokens of blocks 3, 6, 9, 12 (0-based 2, 5, 8, 11) are
# concatenated before the x4 upsampling and the 256-bin classifier; depth range 1e-3..10 m.
#   python tools/train.py configs/nyu_regvit_linear4.py
#   python tools/test.py configs/nyu_regvit_linear4.py CKPT
_base_ = ['mmseg::_base_/default_runtime.py', './_base_/nyu_depth.py', './_base_/regvit_depth_38k.py']
custom_imports = dict(imports=['dense_adapters.models', 'dense_adapters.evaluation'], allow_failed_imports=False)
model = dict(
    backbone=dict(out_indices=(2, 5, 8, 11)),
    decode_head=dict(in_channels=[384, 384, 384, 384], in_index=[0, 1, 2, 3]))
