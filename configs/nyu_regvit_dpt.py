# NYU Depth v2 with a DPT decoder (DINOv2's "DPT" depth protocol) on a frozen DINOv2 ViT-S/14 with 4 registers:
# blocks 3, 6, 9, 12 (0-based 2, 5, 8, 11) as [patch map, cls] pairs, reassembled at 4x, 2x, 1x, 1/2x of the
# patch grid with the "project" readout, fused coarse to fine, regressing depth as relu(x) + 1e-3 m.
#   python tools/train.py configs/nyu_regvit_dpt.py
#   python tools/test.py configs/nyu_regvit_dpt.py CKPT
# Data, weights and evaluation protocol as configs/nyu_regvit_linear.py (docs/depth.md).
_base_ = ['mmseg::_base_/default_runtime.py', './_base_/nyu_depth.py', './_base_/regvit_depth_38k.py']
custom_imports = dict(imports=['dense_adapters.models', 'dense_adapters.evaluation'], allow_failed_imports=False)
min_depth, max_depth = 1e-3, 10.0
model = dict(
    backbone=dict(out_indices=(2, 5, 8, 11)),
    decode_head=dict(
        _delete_=True,
        type='dense_adapters.DepthDPTHead',
        embed_dims=384,
        post_process_channels=[48, 96, 192, 384],
        readout_type='project',  # Linear(2C -> C) + GELU on [patch | cls]; registers are not read
        channels=256,
        in_index=[0, 1, 2, 3],
        min_depth=min_depth,
        max_depth=max_depth,
        align_corners=False,
        loss_decode=[
            dict(type='dense_adapters.SILogLoss', variance_focus=0.85, reduction='batch', min_depth=min_depth,
                 max_depth=max_depth, loss_weight=1.0, loss_name='loss_silog'),
            dict(type='dense_adapters.GradientMatchingLoss', scales=4, min_depth=min_depth, max_depth=max_depth,
                 loss_weight=0.5, loss_name='loss_grad'),
        ]))
