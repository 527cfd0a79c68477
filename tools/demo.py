"""The main job on the embedded default: train and evaluate ADE20K segmentation on the sample, on the CPU.

A thin entry point: the tool is dense_adapters.cli.demo,
installed as dense-adapters-demo.
"""
import sys

from dense_adapters.cli.demo import main

if __name__ == "__main__":
    sys.exit(main())
