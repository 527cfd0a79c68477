"""The one backbone builder of the tools: a core RegViT from a preset (``--arch``) or from a config's backbone,
with overrides (``--cfg-options``) and a checkpoint converted on load (``--checkpoint``, ``--source``)."""
from __future__ import annotations

import argparse
import os.path as osp
import sys
from typing import Optional

from ..errors import UserError

SOURCE_HELP = "checkpoint format: auto (detect from the keys), dinov2, timm, deit3, native"


def add_backbone_args(parser: argparse.ArgumentParser, config_positional: bool = False,
                      deprecated_overrides: tuple[str, ...] = ()) -> argparse._ArgumentGroup:
    """Add ``config`` (positional and optional, or ``--config``), ``--arch``, ``--cfg-options``, ``--checkpoint``,
    ``--source`` and ``--trust-pickle``; ``deprecated_overrides`` are old spellings of ``--cfg-options``."""
    from mmengine.config import DictAction

    from ..nn import PRESETS
    from .core import _DeprecatedDictAction

    g = parser.add_argument_group("backbone (a config or --arch)")
    cfg_help = ("config whose model.backbone (or top-level backbone = dict(...)) is a dense_adapters.RegViT")
    if config_positional:
        parser.add_argument("config", nargs="?", help=cfg_help)
    else:
        g.add_argument("--config", help=cfg_help)
    g.add_argument("--arch", help=f"a RegViT preset instead of a config: {', '.join(sorted(PRESETS))}")
    g.add_argument("--cfg-options", nargs="+", action=DictAction, default={}, metavar="KEY=VALUE",
                   help="overrides: with --arch, RegViT arguments of the preset (e.g. depth=4 num_register_tokens=0); "
                        "with a config, config entries (e.g. model.backbone.depth=4)")
    for name in deprecated_overrides:
        g.add_argument(name, nargs="+", action=_DeprecatedDictAction, dest="cfg_options", metavar="KEY=VALUE",
                       help="deprecated spelling of --cfg-options")
    g.add_argument("--checkpoint", help="weights for the ViT, converted on load (DINOv2 / timm / DeiT-III / native "
                                        "RegViT / a training checkpoint); overrides the config's init_cfg")
    g.add_argument("--source", default="auto", help=SOURCE_HELP)
    g.add_argument("--trust-pickle", action="store_true",
                   help="allow a checkpoint that needs arbitrary code to unpickle (only for files you trust)")
    return g


def _backbone_cfg(path: str, cfg_options: Optional[dict]) -> tuple[dict, str]:
    from mmengine.config import Config

    if not osp.isfile(path):
        raise UserError(f"config {path!r} not found: pass an existing config file")
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if "model" in cfg and isinstance(cfg.model, dict) and "backbone" in cfg.model:
        bcfg = cfg.model.backbone
    elif "backbone" in cfg:
        bcfg = cfg.backbone
    elif "type" in cfg:
        bcfg = cfg
    else:
        raise UserError(f"config {path!r} has no model.backbone (nor backbone, nor type): pass a segmentor/restorer "
                        "config, a backbone config, or use --arch")
    return dict(bcfg), cfg.get("default_scope", "mmseg")


def build_backbone(config: Optional[str] = None, arch: Optional[str] = None, cfg_options: Optional[dict] = None,
                   checkpoint: Optional[str] = None, source: str = "auto", trust_pickle: bool = False,
                   log=print):
    """The core :class:`dense_adapters.nn.RegViT` (in eval mode) named by exactly one of ``config`` / ``arch``.

    ``cfg_options`` overrides the preset's RegViT arguments (with ``arch``) or the config's entries. With a
    ``checkpoint`` it is converted and loaded (the config's ``init_cfg`` is then not used); without one a config's
    ``init_cfg`` is applied, and a bare preset keeps random weights (a warning says so).
    """
    from ..nn import create_regvit
    from ..nn.convert import load_pretrained

    if (config is None) == (arch is None):
        raise UserError("give exactly one of --config CFG (a backbone config) or --arch PRESET")
    if arch:
        try:
            vit = create_regvit(arch, **(cfg_options or {}))
        except (TypeError, ValueError) as e:  # an unknown preset or keyword argument, a bad value
            raise UserError(f"cannot build --arch {arch}: {e}") from None
    else:
        from mmengine.registry import DefaultScope

        from ..registry import MODELS
        from ..utils import register_all_modules

        bcfg, scope = _backbone_cfg(config, cfg_options)
        if checkpoint:
            bcfg.pop("init_cfg", None)
        register_all_modules(init_default_scope=False)
        with DefaultScope.overwrite_default_scope(scope):
            module = MODELS.build(bcfg)
        if getattr(module, "init_cfg", None) and hasattr(module, "init_weights"):
            module.init_weights()
        vit = getattr(module, "vit", module)
    if not hasattr(vit, "forward_blocks") or not hasattr(vit, "num_prefix_tokens"):
        raise UserError(f"the backbone is a {type(vit).__name__}, not a dense_adapters RegViT: the tools read RegViT "
                        "internals (forward_blocks, num_prefix_tokens)")
    if checkpoint:
        report = load_pretrained(vit, checkpoint, source=source, trust_pickle=trust_pickle)
        log(f"loaded {checkpoint}: {report}")
    elif arch:
        print(f"warning: --arch {arch} without --checkpoint: the ViT has RANDOM weights", file=sys.stderr)
    return vit.eval()


def backbone_from_args(args: argparse.Namespace):
    """:func:`build_backbone` with the options of :func:`add_backbone_args`."""
    old = getattr(args, "deprecated_override", None)
    if old and args.config:
        raise UserError(f"{old} overrides the RegViT arguments of an --arch preset; with a config use "
                        "--cfg-options model.backbone.KEY=VALUE (or edit the config)")
    return build_backbone(config=args.config, arch=args.arch, cfg_options=args.cfg_options,
                          checkpoint=args.checkpoint, source=args.source, trust_pickle=args.trust_pickle)
