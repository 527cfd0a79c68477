"""What the analysis tools share besides the backbone (``dense_adapters.cli.backbone``): which images, test-time
registers, and running under ``no_grad``."""
from __future__ import annotations

import argparse
from typing import Callable, Optional

from ...errors import UserError
from ..backbone import add_backbone_args as _add_backbone_args
from ..core import run_cli


def add_backbone_args(parser: argparse.ArgumentParser, tt_registers: bool = True) -> None:
    """The shared backbone options (``--config`` / ``--arch``, ``--cfg-options`` (old spelling ``--set``),
    ``--checkpoint``, ``--source``, ``--trust-pickle``) and, optionally, test-time registers."""
    g = _add_backbone_args(parser, deprecated_overrides=("--set",))
    if tt_registers:
        from ...analysis.register_neurons import METHODS, released_register_neurons
        from ...analysis.test_time_registers import INITS

        g.add_argument("--tt-registers", metavar="JSON|NAME",
                       help="register neurons: a JSON from find_register_neurons.py or a released list ("
                            f"{', '.join(released_register_neurons())}); also show the model with test-time registers")
        g.add_argument("--num-tt-registers", type=int, default=1, help="test-time registers to add (default 1)")
        g.add_argument("--tt-method", choices=METHODS,
                       help="value written into the test-time registers: jiang2025 (one signed max-magnitude value "
                            "per block) or per_neuron (each neuron its own maximum); default: the JSON's, else "
                            "jiang2025")
        g.add_argument("--tt-init", choices=INITS, default="zero", help="initial test-time register (default zero)")


def add_image_args(parser: argparse.ArgumentParser, default_size: int = 448) -> None:
    parser.add_argument("images", nargs="*",
                        help="image files, folders, or scikit-image sample names ('all' for every sample); "
                             "default: astronaut coffee chelsea rocket motorcycle_left")
    parser.add_argument("--size", type=int, nargs="+", default=[default_size],
                        help="long side (one value, aspect kept) or H W; rounded to multiples of the patch size")
    parser.add_argument("--max-images", type=int, help="use at most this many images")
    parser.add_argument("--out-dir", default="work_dirs/analysis", help="where PNGs and the JSON summary go")


def maybe_tt(vit, args: argparse.Namespace):
    """The same model with test-time registers if ``--tt-registers`` was given (converted in place), else None."""
    if not getattr(args, "tt_registers", None):
        return None
    from ...analysis.test_time_registers import add_test_time_registers

    return add_test_time_registers(vit, args.tt_registers, args.num_tt_registers, init=args.tt_init,
                                   method=args.tt_method)


def iter_images(args: argparse.Namespace, patch: int, size: Optional[list] = None):
    """(name, normalized tensor [1, 3, H, W], resized uint8 image) for every requested image."""
    from ...analysis.images import load_images, preprocess

    size = size or args.size
    if len(size) > 2:
        raise UserError(f"--size takes one value (long side) or two (H W), got {size}")
    for name, img in load_images(args.images, args.max_images):
        x, shown = preprocess(img, size if len(size) == 2 else size[0], patch)
        yield name, x, shown


def block_index(i: int, depth: int, option: str) -> int:
    """Block ``i`` of a ``depth``-block ViT (negative counts from the end); one line for one outside it."""
    if not -depth <= i < depth:
        raise UserError(f"{option} {i} is outside the model's blocks: give 0..{depth - 1} (or -{depth}..-1 from the "
                        "end)")
    return i % depth


def analysis_main(parse_args: Callable, run: Callable, argv=None) -> int:
    """A tool's ``main``: parse, run, errors as one line (:func:`dense_adapters.cli.core.run_cli`)."""
    args = parse_args(argv)
    return run_cli(lambda: run(args))
