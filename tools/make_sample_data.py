"""Write a tiny sample dataset made from scikit-image's bundled photos.

A thin entry point: the tool is dense_adapters.cli.make_sample_data,
installed as dense-adapters-make-sample-data.
"""
import sys

from dense_adapters.cli.make_sample_data import main

if __name__ == "__main__":
    sys.exit(main())
