"""Norms of every output token per block (patch / cls / registers), outliers per image and per layer.

A thin entry point: the tool is dense_adapters.cli.analysis.token_norms,
installed as dense-adapters-token-norms.
"""
import sys

from dense_adapters.cli.analysis.token_norms import main

if __name__ == "__main__":
    sys.exit(main())
