# Restorer + Uformer (preset T here; leaves pick the preset and SkipAt), Charbonnier loss (eps 1e-3).
model = dict(
    type='dense_adapters.Restorer',
    data_preprocessor=dict(type='dense_adapters.RestorerDataPreprocessor'),
    generator=dict(type='dense_adapters.Uformer', preset='T', win_size=8, drop_path_rate=0.1, modulator=True,
                   skip_mode=None),
    loss=dict(type='dense_adapters.CharbonnierLoss', eps=1e-3))
