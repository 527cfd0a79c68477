"""Write a tiny sample dataset made from scikit-image's bundled photos.

    python tools/make_sample_data.py ade data/samples/ade
"""
import argparse
import sys

from dense_adapters.datasets.samples import load_all


def main() -> None:
    samples = load_all()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=sorted(samples), help="which sample")
    parser.add_argument("out", help="output folder")
    args = parser.parse_args()
    root = samples[args.name](args.out)
    print(f"wrote the {args.name} sample to {root}")


if __name__ == "__main__":
    sys.exit(main())
