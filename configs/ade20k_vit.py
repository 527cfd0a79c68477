# Alias of vit-s14_dinov2-lin_8xb2-40k_ade20k-512x512.py,
# kept so that the README's and older commands keep working; its name says the recipe (docs/protocols.md).
# Change the target, not this file.
_base_ = ['./vit-s14_dinov2-lin_8xb2-40k_ade20k-512x512.py']
