"""Shared command-line pieces of ``tools/analysis/*.py``: which backbone, which images."""
from __future__ import annotations

import argparse
import ast
from typing import Optional

import torch

from ..nn import PRESETS, RegViT, create_regvit
from ..nn.convert import load_pretrained
from .images import load_images, preprocess


def add_backbone_args(parser: argparse.ArgumentParser, tt_registers: bool = True) -> None:
    g = parser.add_argument_group("backbone (one of --config / --arch)")
    g.add_argument("--config", help="mmengine config whose model.backbone is a dense_adapters.RegViT")
    g.add_argument("--arch", help=f"a RegViT preset: {', '.join(sorted(PRESETS))}")
    g.add_argument("--checkpoint", help="weights for the ViT (DINOv2 / timm / DeiT-III / RegViT / mmseg checkpoint)")
    g.add_argument("--source", default="auto", help="checkpoint format: auto, dinov2, timm, deit3, native")
    g.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override RegViT arguments of the preset, e.g. --set depth=4 num_register_tokens=0")
    if tt_registers:
        from .register_neurons import METHODS, released_register_neurons
        from .test_time_registers import INITS

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


def _parse_overrides(items: list[str]) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        try:
            out[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            out[k] = v
    return out


def _from_config(path: str) -> RegViT:
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from ..registry import MODELS, register_all_modules

    cfg = Config.fromfile(path)
    bb = cfg.get("model", {}).get("backbone")
    if bb is None:
        raise SystemExit(f"config {path!r} has no model.backbone: pass a segmentor/restorer config or use --arch")
    register_all_modules()
    init_default_scope(cfg.get("default_scope", "mmseg"))
    module = MODELS.build(bb)
    vit = getattr(module, "vit", module)
    if not isinstance(vit, RegViT):
        raise SystemExit(f"model.backbone of {path!r} is {type(module).__name__}, not a dense_adapters.RegViT: "
                         "the analysis tools read RegViT internals")
    module.init_weights()
    return vit


def build_vit(args: argparse.Namespace) -> RegViT:
    """The RegViT named by ``--config`` or ``--arch`` (+ ``--set``), with ``--checkpoint`` loaded, in eval mode."""
    if bool(args.config) == bool(args.arch):
        raise SystemExit("give exactly one of --config CFG or --arch PRESET")
    overrides = _parse_overrides(args.set)
    if args.config:
        if overrides:
            raise SystemExit("--set applies to --arch presets; edit the config (or --cfg-options) instead")
        vit = _from_config(args.config)
    else:
        try:
            vit = create_regvit(args.arch, **overrides)
        except (ValueError, TypeError) as e:
            raise SystemExit(f"cannot build --arch {args.arch}: {e}") from e
    if args.checkpoint:
        report = load_pretrained(vit, args.checkpoint, source=args.source)
        print(f"loaded {args.checkpoint}: {report}")
    elif not args.config:
        print("warning: no --checkpoint: a randomly initialised ViT has no artifacts to show")
    return vit.eval()


def maybe_tt(vit: RegViT, args: argparse.Namespace) -> Optional[RegViT]:
    """The same model with test-time registers if ``--tt-registers`` was given (converted in place), else None."""
    if not getattr(args, "tt_registers", None):
        return None
    from .test_time_registers import add_test_time_registers

    return add_test_time_registers(vit, args.tt_registers, args.num_tt_registers, init=args.tt_init,
                                   method=args.tt_method)


def iter_images(args: argparse.Namespace, patch: int, size: Optional[list] = None):
    """(name, normalized tensor [1, 3, H, W], resized uint8 image) for every requested image."""
    size = size or args.size
    if len(size) > 2:
        raise SystemExit(f"--size takes one value (long side) or two (H W), got {size}")
    for name, img in load_images(args.images, args.max_images):
        x, shown = preprocess(img, size if len(size) == 2 else size[0], patch)
        yield name, x, shown


def run_tool(fn):
    """Decorator for tool ``main``s: no autograd, and the library's one-line errors become clean exits."""

    def wrapped(argv=None):
        try:
            with torch.no_grad():
                return fn(argv)
        except (ValueError, FileNotFoundError) as e:
            raise SystemExit(f"error: {e}") from e

    return wrapped
