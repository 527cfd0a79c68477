# The runtime every config shares: mmseg's default scope, this package's registered classes (imported once,
# here, not in each leaf) and logging. What differs per task lives with the task: the visualizer, cudnn
# benchmark and seed in the schedule bases (next to the hooks that use them), test-time augmentation
# (tta_pipeline + tta_model) in the dataset bases.
default_scope = 'mmseg'
custom_imports = dict(
    imports=['dense_adapters.models', 'dense_adapters.datasets', 'dense_adapters.evaluation', 'dense_adapters.engine'],
    allow_failed_imports=False)
vis_backends = [dict(type='LocalVisBackend')]
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
