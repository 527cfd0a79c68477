"""Necks that turn a plain ViT's single-stride maps into the multi-scale features dense heads expect."""
