# DeiT's ViT classifier (deit/main.py): a RegViT trained from scratch with stochastic depth 0.1 (linear over the
# blocks), cls-token pooling and a linear head; per batch random erasing (p 0.25, per-pixel noise) and Mixup 0.8 /
# CutMix 1.0 (switch 0.5, per batch) with label smoothing 0.1 folded into the soft targets. ViT-S/16 here; the
# leaves pick the width (tiny/small/base), SkipAt blocks (3..8, the paper's) and registers.
model = dict(
    type='dense_adapters.ImageClassifier',
    data_preprocessor=dict(
        type='dense_adapters.ClsDataPreprocessor',
        random_erasing=dict(probability=0.25, mode='pixel', max_count=1),
        mixup=dict(mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5, mode='batch', label_smoothing=0.1)),
    backbone=dict(type='dense_adapters.RegViT', preset='vit_small_patch16_224', drop_path_rate=0.1, init_cfg=None),
    num_classes=1000,
    global_pool='token',
    label_smoothing=0.1)
