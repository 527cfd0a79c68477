# Alias of regvit-s14-reg4_dinov2-lin4_8xb2-38k_nyu-416x544.py,
# kept so that the README's and older commands keep working; its name says the recipe (docs/protocols.md).
# Change the target, not this file.
_base_ = ['./regvit-s14-reg4_dinov2-lin4_8xb2-38k_nyu-416x544.py']
