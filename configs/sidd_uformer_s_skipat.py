# Alias of uformer-s-skipat_1xb32-750k_sidd-128x128.py,
# kept so that the README's and older commands keep working; its name says the recipe (docs/protocols.md).
# Change the target, not this file.
_base_ = ['./uformer-s-skipat_1xb32-750k_sidd-128x128.py']
