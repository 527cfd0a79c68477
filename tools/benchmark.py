"""Speed side by side: our RegViT vs timm's and mmseg's ViT, SkipAt vs attention, ADE20K train steps, LOST, Uformer.

A thin entry point: the tool is dense_adapters.cli.benchmark,
installed as dense-adapters-benchmark.
"""
import sys

from dense_adapters.cli.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
