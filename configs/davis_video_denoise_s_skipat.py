# Alias of video-uformer-s-skipat_1xb8-100k_davis-sigma30-t7-128x128.py,
# kept so that the README's commands keep working; its name says the recipe. Change the target, not this file.
_base_ = ['./video-uformer-s-skipat_1xb8-100k_davis-sigma30-t7-128x128.py']
