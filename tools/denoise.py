"""Denoise one image or a folder of images with a trained restorer; writes the result and a side-by-side PNG.

A thin entry point: the tool is dense_adapters.cli.denoise,
installed as dense-adapters-denoise.
"""
import sys

from dense_adapters.cli.denoise import main

if __name__ == "__main__":
    sys.exit(main())
