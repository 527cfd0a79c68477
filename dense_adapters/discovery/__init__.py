"""Unsupervised object discovery on ViT features (LOST), as pure tensor functions."""
from .lost import (BIAS_MODES, FEATURES, SETTINGS, LOSTOutput, box_iou, boxes_to_image, corloc_hit, extract_features,
                   gram_bias, heads_to_channels, lost, mask_box, patch_degree, patch_tokens, seed_component,
                   similarity)

__all__ = ["FEATURES", "SETTINGS", "BIAS_MODES", "gram_bias", "LOSTOutput", "lost", "similarity", "patch_degree", "seed_component", "mask_box",
           "boxes_to_image", "box_iou", "corloc_hit", "extract_features", "patch_tokens", "heads_to_channels"]
