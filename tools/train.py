"""Train a model from a config with mmengine's Runner (mmseg's CLI).

A thin entry point: the tool is dense_adapters.cli.train,
installed as dense-adapters-train.
"""
import sys

from dense_adapters.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
