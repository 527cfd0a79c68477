"""Find the register neurons of a ViT (Jiang et al. 2025): the MLP neurons that write the high-norm outlier tokens.

A thin entry point: the tool is dense_adapters.cli.analysis.find_register_neurons,
installed as dense-adapters-find-register-neurons.
"""
import sys

from dense_adapters.cli.analysis.find_register_neurons import main

if __name__ == "__main__":
    sys.exit(main())
