"""Evaluate a checkpoint on a config's test set with mmengine's Runner (mmseg's CLI).

A thin entry point: the tool is dense_adapters.cli.test,
installed as dense-adapters-test.
"""
import sys

from dense_adapters.cli.test import main

if __name__ == "__main__":
    sys.exit(main())
