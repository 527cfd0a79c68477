"""LOST unsupervised object discovery (single object per image) with a dense-adapters ViT, and its CorLoc.

A thin entry point: the tool is dense_adapters.cli.lost,
installed as dense-adapters-lost.
"""
import sys

from dense_adapters.cli.lost import main

if __name__ == "__main__":
    sys.exit(main())
