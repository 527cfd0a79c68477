"""Write a tiny sample dataset made from scikit-image's bundled photos.

    python tools/make_sample_data.py ade data/samples/ade
"""
from __future__ import annotations

import argparse
from typing import Optional, Sequence

from .core import run_cli


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from ..datasets.samples import load_all

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=sorted(load_all()), help="which sample")
    p.add_argument("out", help="output folder")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> str:
    from ..datasets.samples import load_all

    root = load_all()[args.name](args.out)
    print(f"wrote the {args.name} sample to {root}")
    return root


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    return run_cli(lambda: run(args))


if __name__ == "__main__":
    import sys

    sys.exit(main())
