# The UPerNet sibling of the DINOv3 linear probe (not a DINOv3 protocol: DINOv3 publishes linear and M2F heads):
# DINOv3 ViT-S/16 fine-tuned with MultiLevelNeck + UPerNet + FCN auxiliary head, exactly the recipe of
# regvit-s14-reg4_upernet_4xb4-40k_ade20k-512x512.py (mmseg's 512x512 ADE20K, AdamW 6e-5, 40k) on this backbone.
# Total batch 16 = 4 GPUs x 4 (on N GPUs: --cfg-options train_dataloader.batch_size=$((16 / N))).
# Short name: configs/ade20k_dinov3_vits16_upernet.py (an alias).
_base_ = [
    './_base_/default_runtime.py', './_base_/models/regvit-s14-reg4_upernet.py',
    './_base_/datasets/ade20k-512x512.py', './_base_/schedules/upernet-adamw_40k.py'
]
model = dict(backbone=dict(
    preset='dinov3_vits16',
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/dinov3_vits16_pretrain_lvd1689m-08c60483.pth',
                  source='dinov3')))
train_dataloader = dict(batch_size=4)
