# SkipAt on ADE20K: as ade20k_regvit_upernet.py, with blocks 3..8 (0-based) skipping self-attention; their
# attention output is SkipAt's parametric function of the previous block's (Venkataramanan et al., Sec. 4).
_base_ = [
    'mmseg::_base_/datasets/ade20k.py', 'mmseg::_base_/default_runtime.py',
    './_base_/regvit_upernet_40k.py'
]
custom_imports = dict(imports=['dense_adapters.models'], allow_failed_imports=False)
model = dict(backbone=dict(skip_layers=(3, 4, 5, 6, 7, 8), skip_mode='parametric'))
