# Alias of dinov3-vits16_dinov3-lin_4xb4-38k_nyu-416x544.py,
# kept so that the README's and older commands keep working; its name says the recipe (docs/protocols.md).
# Change the target, not this file.
_base_ = ['./dinov3-vits16_dinov3-lin_4xb4-38k_nyu-416x544.py']
