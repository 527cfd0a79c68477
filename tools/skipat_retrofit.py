"""SkipAt retrofit of a pretrained ViT / Uformer: see dense_adapters/retrofit/cli.py and docs/skipat_retrofit.md.

    python tools/skipat_retrofit.py --arch dinov2_vits14_reg4 --checkpoint W.pth --images DIR --skip 3-8 \\
        --iters 3000 --out OUT
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout without install

from dense_adapters.retrofit.cli import main  # noqa: E402
from dense_adapters.runner_utils import run_cli  # noqa: E402

if __name__ == "__main__":
    run_cli(main)
