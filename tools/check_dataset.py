"""Validate a config's dataset before a long training: counts, image sizes, label ranges, unreadable files.

A thin entry point: the tool is dense_adapters.cli.check_dataset,
installed as dense-adapters-check-dataset.
"""
import sys

from dense_adapters.cli.check_dataset import main

if __name__ == "__main__":
    sys.exit(main())
