"""SkipAt retrofit of a pretrained ViT / Uformer: distil Phi from the model's own attention (docs/skipat_retrofit.md).

A thin entry point: the tool is dense_adapters.cli.skipat_retrofit,
installed as dense-adapters-skipat-retrofit.
"""
import sys

from dense_adapters.cli.skipat_retrofit import main

if __name__ == "__main__":
    sys.exit(main())
