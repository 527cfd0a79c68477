# An option, not a published protocol: the "lin." recipe of regvit-s14-reg4_dinov2-lin_8xb2-40k_ade20k-512x512.py
# with the head this toolkit used before: each patch feature concatenated with the cls token (768 channels) and
# the features upsampled x4 (bilinear) before BN + 1x1 conv, as DINOv2's depth probe does. It costs 16x the head
# compute; with the same features its labels differ from "lin." (docs/protocols.md).
# Total batch 16 = 8 GPUs x 2 (on N GPUs: --cfg-options train_dataloader.batch_size=$((16 / N))).
_base_ = [
    './_base_/default_runtime.py', './_base_/models/regvit-s14-reg4_dinov2-lin.py',
    './_base_/datasets/ade20k_dinov2-512x512.py', './_base_/schedules/dinov2-seg-linear_40k.py'
]
model = dict(
    backbone=dict(output_cls_token=True),
    decode_head=dict(use_cls_token=True, upsample=4))
train_dataloader = dict(batch_size=2)
