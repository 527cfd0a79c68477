"""Convert a DINOv2 / timm / DeiT-III checkpoint to RegViT's names (a state dict usable as init_cfg or load_from).

A thin entry point: the tool is dense_adapters.cli.convert_checkpoint,
installed as dense-adapters-convert-checkpoint.
"""
import sys

from dense_adapters.cli.convert_checkpoint import main

if __name__ == "__main__":
    sys.exit(main())
