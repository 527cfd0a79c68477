# ADE20K fine-tuning of DINOv2 ViT-L/14 with 4 registers + UPerNet, sharded with FSDP (mmengine FlexibleRunner).
#   bash tools/dist_train.sh configs/regvit-l14-reg4_upernet-fsdp_8xb2-40k_ade20k-512x512.py 8   # 8 GPUs, nccl
#   bash tools/slurm_train.sh PARTITION JOB configs/regvit-l14-reg4_upernet-fsdp_8xb2-40k_ade20k-512x512.py 16
# Needs CUDA GPUs (FSDP here shards over nccl; there is no CPU path). ViT-g: preset='dinov2_vitg14_reg4',
# channels 1536, out_indices (9, 19, 29, 39). Weights: checkpoints/dinov2_vitl14_reg4_pretrain.pth (DINOv2's file).
# Total batch 16 = 8 GPUs x 2 (on N GPUs: train_dataloader.batch_size=16/N).
# README name: configs/ade20k_regvit_large_fsdp.py (an alias of this file).
_base_ = [
    './_base_/default_runtime.py', './_base_/models/regvit-s14-reg4_upernet.py',
    './_base_/datasets/ade20k-512x512.py', './_base_/schedules/upernet-adamw_40k.py'
]
width = 1024
model = dict(
    backbone=dict(
        preset='dinov2_vitl14_reg4',
        out_indices=(5, 11, 17, 23),
        drop_path_rate=0.2,
        init_cfg=dict(checkpoint='checkpoints/dinov2_vitl14_reg4_pretrain.pth')),
    neck=dict(in_channels=[width] * 4, out_channels=width),
    decode_head=dict(in_channels=[width] * 4),
    auxiliary_head=dict(in_channels=width))
train_dataloader = dict(batch_size=2)

runner_type = 'FlexibleRunner'
strategy = dict(
    type='FSDPStrategy',
    model_wrapper=dict(
        auto_wrap_policy=dict(type='dense_adapters.regvit_block_wrap_policy'),  # one FSDP unit per block
        use_orig_params=True,  # per-parameter decay groups (paramwise_cfg) and frozen parts keep working
        mixed_precision=dict(param_dtype='bfloat16', reduce_dtype='float32', buffer_dtype='float32'),
        sharding_strategy='FULL_SHARD'),
    activation_checkpointing=dict(check_fn='dense_adapters.regvit_block_check_fn'),  # recompute blocks (backward)
    state_dict_cfg='full')  # checkpoints hold the full model (rank 0 gathers it): loadable without FSDP
# FSDP's mixed precision replaces AmpOptimWrapper (do not pass --amp)
optim_wrapper = dict(type='OptimWrapper', clip_grad=dict(max_norm=1.0))
