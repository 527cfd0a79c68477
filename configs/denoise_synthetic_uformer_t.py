# Alias of uformer-t_1xb8-2k_synthetic-noise-64x64.py,
# kept so that the README's and older commands keep working; its name says the recipe (docs/protocols.md).
# Change the target, not this file.
_base_ = ['./uformer-t_1xb8-2k_synthetic-noise-64x64.py']
