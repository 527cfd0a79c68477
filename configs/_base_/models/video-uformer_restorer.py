# Restorer + VideoUformer (preset S here; leaves pick the preset and SkipAt), Charbonnier loss (eps 1e-3) on
# [0, 1] frames. Multi-input multi-output: T noisy frames in, T restored frames out. Sequences longer than
# clip_len frames (whole-sequence evaluation) are restored in temporal windows of clip_len frames overlapping by
# clip_overlap, predictions averaged; tile > 0 also cuts frames into overlapping tiles (memory).
model = dict(
    type='dense_adapters.Restorer',
    data_preprocessor=dict(type='dense_adapters.RestorerDataPreprocessor'),
    generator=dict(type='dense_adapters.VideoUformer', preset='S', win_size=(4, 8, 8), drop_path_rate=0.1,
                   skip_mode=None, clip_len=7, clip_overlap=2, tile=0, tile_overlap=32),
    loss=dict(type='dense_adapters.CharbonnierLoss', eps=1e-3))
