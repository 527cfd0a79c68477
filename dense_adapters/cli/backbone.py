"""The one backbone builder of the tools: a core RegViT from a preset (``--arch``) or from a config's backbone,
with overrides (``--cfg-options``) and a checkpoint converted on load (``--checkpoint``, ``--source``)."""
from __future__ import annotations

import argparse
import sys
from typing import Optional

from ..errors import DenseAdaptersError, UserError

SOURCE_HELP = ("checkpoint format (default auto: detected from the keys, a Hugging Face config.json or native meta): "
               "{}; see docs/backbones.md")


def add_backbone_args(parser: argparse.ArgumentParser, config_positional: bool = False,
                      deprecated_overrides: tuple[str, ...] = ()) -> argparse._ArgumentGroup:
    """Add ``config`` (positional and optional, or ``--config``), ``--arch``, ``--cfg-options``, ``--checkpoint``,
    ``--source`` and ``--trust-pickle``; ``deprecated_overrides`` are old spellings of ``--cfg-options``."""
    from ..nn import PRESETS
    from .cfg_options import CfgOptionsAction

    g = parser.add_argument_group("backbone (a config or --arch)")
    cfg_help = ("config whose model.backbone (or top-level backbone = dict(...)) is a dense_adapters.RegViT")
    if config_positional:
        parser.add_argument("config", nargs="?", help=cfg_help)
    else:
        g.add_argument("--config", help=cfg_help)
    g.add_argument("--arch", help=f"a RegViT preset instead of a config: {', '.join(sorted(PRESETS))}")
    g.add_argument("--cfg-options", nargs="+", action=CfgOptionsAction, default={}, metavar="KEY=VALUE",
                   help="overrides: with --arch, RegViT arguments of the preset (e.g. depth=4 num_register_tokens=0); "
                        "with a config, config entries (e.g. model.backbone.depth=4)")
    for name in deprecated_overrides:
        g.add_argument(name, nargs="+", action=CfgOptionsAction, deprecated="--cfg-options", dest="cfg_options", metavar="KEY=VALUE",
                       help="deprecated spelling of --cfg-options")
    from ..nn.convert import source_names

    g.add_argument("--checkpoint", help="weights for the ViT, converted on load: a file, a Hugging Face model folder "
                                        "or a URL (DINOv3 / DINOv2 / Hugging Face / timm / OpenCLIP / mmseg / DeiT-III "
                                        "/ native RegViT / a training checkpoint); overrides the config's init_cfg. A "
                                        "Hugging Face folder or a native checkpoint names its architecture: then "
                                        "--arch/--config may be left out")
    g.add_argument("--source", default="auto", choices=["auto", *source_names()],
                   help=SOURCE_HELP.format(", ".join(source_names())))
    g.add_argument("--partial", action="store_true",
                   help="allow a partial load (model tensors left at their initial values, checkpoint tensors "
                        "unused); without it such a load is refused")
    g.add_argument("--trust-pickle", action="store_true",
                   help="allow a checkpoint that needs arbitrary code to unpickle (only for files you trust)")
    return g


def _backbone_cfg(path: str, cfg_options: Optional[dict]) -> tuple[dict, str]:
    from .cfg_options import apply_cfg_options
    from .configs import read_config

    cfg = read_config(path)
    apply_cfg_options(cfg, cfg_options)
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
                   log=print, partial: bool = False):
    """The core :class:`dense_adapters.nn.RegViT` (in eval mode) named by at most one of ``config`` / ``arch``.

    ``cfg_options`` overrides the preset's RegViT arguments (with ``arch``) or the config's entries. With a
    ``checkpoint`` it is converted and loaded (the config's ``init_cfg`` is then not used; a load that would be
    partial is refused unless ``partial``); without one a config's ``init_cfg`` is applied, and a bare preset keeps
    random weights (a warning says so). With neither ``config`` nor ``arch``, the checkpoint must name its
    architecture (a Hugging Face folder's config.json, a native checkpoint's meta).
    """
    from .. import engine  # noqa: F401  (mmengine's checkpoint prefixes for --checkpoint / init_cfg)
    from ..nn import create_regvit
    from ..nn.convert import build_from_checkpoint, load_pretrained

    if config is not None and arch is not None:
        raise UserError("give one of --config CFG (a backbone config) or --arch PRESET, not both")
    if config is None and arch is None:
        if not checkpoint:
            raise UserError("give exactly one of --config CFG (a backbone config) or --arch PRESET, or a --checkpoint "
                            "that names its architecture (a Hugging Face model folder, a native checkpoint)")
        vit, report = build_from_checkpoint(checkpoint, source=source, trust_pickle=trust_pickle, partial=partial,
                                            **(cfg_options or {}))
        log(f"built the architecture {checkpoint} describes; {report}")
        return vit.eval()
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
            try:
                module = MODELS.build(bcfg)
            except DenseAdaptersError:
                raise
            except (TypeError, ValueError, KeyError) as e:  # an unknown type or keyword, a bad value
                why = e.args[0] if isinstance(e, KeyError) and e.args else e  # KeyError's str() adds quotes
                raise UserError(f"cannot build the backbone of {config}: {why}") from None
        if getattr(module, "init_cfg", None) and hasattr(module, "init_weights"):
            module.init_weights()
        vit = getattr(module, "vit", module)
    if not hasattr(vit, "forward_blocks") or not hasattr(vit, "num_prefix_tokens"):
        raise UserError(f"the backbone is a {type(vit).__name__}, not a dense_adapters RegViT: the tools read RegViT "
                        "internals (forward_blocks, num_prefix_tokens)")
    if checkpoint:
        report = load_pretrained(vit, checkpoint, source=source, trust_pickle=trust_pickle, partial=partial)
        log(str(report))
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
                          checkpoint=args.checkpoint, source=args.source, trust_pickle=args.trust_pickle,
                          partial=getattr(args, "partial", False))
