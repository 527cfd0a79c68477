"""Attention of the cls token and of every register to the patches, per head and averaged, over each image.

A thin entry point: the tool is dense_adapters.cli.analysis.attention_maps,
installed as dense-adapters-attention-maps.
"""
import sys

from dense_adapters.cli.analysis.attention_maps import main

if __name__ == "__main__":
    sys.exit(main())
