"""Linear CKA between every pair of blocks, for (a) cls attention maps and (b) attention-block outputs (SkipAt).

A thin entry point: the tool is dense_adapters.cli.analysis.layer_similarity,
installed as dense-adapters-layer-similarity.
"""
import sys

from dense_adapters.cli.analysis.layer_similarity import main

if __name__ == "__main__":
    sys.exit(main())
