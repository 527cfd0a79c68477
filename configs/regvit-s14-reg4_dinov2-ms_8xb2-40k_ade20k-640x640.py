# DINOv2's "+ms" ADE20K probe on DINOv2 ViT-S/14 with 4 registers: frozen backbone, patch tokens of the last 4
# blocks after the final norm, concatenated, BN + 1x1 conv, 640x640 crops, 40k iterations; the reference test is
# multi-scale (5 scales x flip):
#   python tools/test.py configs/regvit-s14-reg4_dinov2-ms_8xb2-40k_ade20k-640x640.py CKPT --tta
# (validation during training is single-scale). Every setting and its source: docs/protocols.md.
# Total batch 16 = 8 GPUs x 2 (on N GPUs: --cfg-options train_dataloader.batch_size=$((16 / N))).
_base_ = [
    './_base_/default_runtime.py', './_base_/models/regvit-s14-reg4_dinov2-ms.py',
    './_base_/datasets/ade20k_dinov2-ms-640x640.py', './_base_/schedules/dinov2-seg-linear_40k.py'
]
train_dataloader = dict(batch_size=2)
