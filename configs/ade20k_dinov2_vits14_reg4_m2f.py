# Alias of regvit-s14-reg4_mask2former_8xb2-160k_ade20k-512x512.py,
# kept so that the README's and older commands keep working; its name says the recipe (docs/protocols.md).
# Change the target, not this file.
_base_ = ['./regvit-s14-reg4_mask2former_8xb2-160k_ade20k-512x512.py']
