"""Evaluate depth maps produced by any system against ground truth, under the NYU protocol of docs/depth.md.

A thin entry point: the tool is dense_adapters.cli.eval_depth,
installed as dense-adapters-eval-depth.
"""
import sys

from dense_adapters.cli.eval_depth import main

if __name__ == "__main__":
    sys.exit(main())
