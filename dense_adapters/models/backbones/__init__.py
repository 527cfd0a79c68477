from .regvit import RegViT

__all__ = ["RegViT"]
