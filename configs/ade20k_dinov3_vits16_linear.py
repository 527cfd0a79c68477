# Alias of dinov3-vits16_dinov3-lin_4xb4-40k_ade20k-512x512.py,
# kept so that the README's and older commands keep working; its name says the recipe (docs/protocols.md).
# Change the target, not this file.
_base_ = ['./dinov3-vits16_dinov3-lin_4xb4-40k_ade20k-512x512.py']
