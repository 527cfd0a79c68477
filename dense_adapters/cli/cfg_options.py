"""The one override syntax, checked: ``--cfg-options KEY=VALUE ...`` parsed as mmengine's ``DictAction`` does, then
validated against the config before it is merged, so that a typo is an error instead of a silently ignored entry.

Rules (docs/reliability.md, "Config overrides"):

* every key must exist in the config, or be an argument of the class that its dict names with ``type=``
  (e.g. ``model.backbone.drop_path_rate`` for a RegViT, ``train_cfg.val_begin`` for an IterBasedTrainLoop;
  top-level keys: the Runner's arguments). An unknown key is an error naming the nearest existing key;
* a leading ``+`` adds a new entry on purpose (``+model.backbone.init_cfg.checkpoint=W`` also turns a ``None`` on
  the way into a dict);
* list entries are addressed by index (``train_pipeline.2.prob=0.3``) and the index must exist;
* a value must have the type of the value it replaces: a number for a number (an integer for an integer), true/false
  for a flag, a dict's entries (or None) for a dict.
"""
from __future__ import annotations

import argparse
import difflib
import inspect
import sys
from typing import Any, Optional

from ..errors import UserError

ADD = "+"
# top-level entries mmengine's Runner.from_cfg / FlexibleRunner / the tools read besides the Runner's arguments
TOP_LEVEL_EXTRA = {"runner_type", "strategy", "compile", "custom_imports", "tta_model", "tta_pipeline", "launcher",
                   "env_cfg", "log_level", "work_dir", "resume", "load_from", "randomness", "default_scope"}


# ---- parsing -------------------------------------------------------------------------------------------------------

def parse_items(items, option: str = "--cfg-options") -> dict:
    """``['a.b=1', 'c=x,y']`` -> ``{'a.b': 1, 'c': ['x', 'y']}`` (mmengine's value syntax); one line for an item
    without ``=`` or with unbalanced brackets."""
    from mmengine.config import DictAction

    out: dict = {}
    for kv in items or ():
        key, eq, val = kv.partition("=")
        if not eq or not key.strip(ADD).strip():
            raise argparse.ArgumentTypeError(f"{option} {kv!r} is not KEY=VALUE (e.g. train_cfg.max_iters=100)")
        try:
            out[key.strip()] = DictAction._parse_iterable(val)
        except AssertionError:
            raise argparse.ArgumentTypeError(f"{option} {kv!r}: unbalanced brackets in the value") from None
        except RecursionError:  # mmengine's parser loops on a call such as dict(...) in a value
            raise argparse.ArgumentTypeError(
                f"{option} {kv!r}: a value is a number, a string, true/false, None or a list/tuple of them, not "
                f"dict(...): set the entries one by one (e.g. {key.strip()}.type=X, or +{key.strip(ADD)}.type=X "
                "for a new one)") from None
    return out


class CfgOptionsAction(argparse.Action):
    """argparse action for ``--cfg-options``: :func:`parse_items` into a dict (merged over repeated options);
    ``deprecated`` names the option that replaces this spelling (a note on stderr)."""

    def __init__(self, *args, deprecated: Optional[str] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.deprecated = deprecated

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        if self.deprecated:
            print(f"note: {option_string} is deprecated, use {self.deprecated} (same KEY=VALUE syntax)",
                  file=sys.stderr)
            namespace.deprecated_override = option_string
        try:
            parsed = parse_items(values, option_string or "--cfg-options")
        except argparse.ArgumentTypeError as e:
            raise argparse.ArgumentError(self, str(e)) from None
        setattr(namespace, self.dest, {**(getattr(namespace, self.dest, None) or {}), **parsed})


# ---- what a typed dict accepts -------------------------------------------------------------------------------------

def _registries() -> list:
    import mmengine.registry as mme
    import mmseg.registry as mms

    from .. import registry as ours

    regs = []
    for mod in (ours, mms, mme):
        for name in dir(mod):
            obj = getattr(mod, name)
            if type(obj).__name__ == "Registry" and obj not in regs:
                regs.append(obj)
    return regs


def resolve_type(t) -> Optional[Any]:
    """The class (or function) a config's ``type`` names, searched in our, mmseg's and mmengine's registries."""
    if not isinstance(t, str):
        return t if callable(t) else None
    for reg in _registries():
        try:
            obj = reg.get(t)
        except Exception:  # noqa: BLE001 - a registry that cannot import its locations: not this one
            obj = None
        if obj is not None:
            return obj
    return None


def accepted_arguments(obj) -> Optional[set]:
    """Keyword arguments ``obj`` (a class or function) takes, following ``**kwargs`` up the class hierarchy (and to
    ``cfg_kwargs_of`` where a class sends its ``**kwargs`` elsewhere); None when it takes any."""
    if obj is None:
        return None
    chain = list(inspect.getmro(obj)) if inspect.isclass(obj) else [obj]
    names: set = set()
    for c in chain:
        fn = c.__init__ if inspect.isclass(c) else c
        if inspect.isclass(c) and "__init__" not in vars(c):
            continue
        try:
            params = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError):
            return None
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - {"self"}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names
        target = vars(c).get("cfg_kwargs_of") if inspect.isclass(c) else None
        if target is not None:
            more = accepted_arguments(target)
            return None if more is None else names | more
    return None  # **kwargs all the way up (e.g. torch.nn.Module): anything goes


def _top_level_arguments() -> set:
    from mmengine.runner import Runner

    return (accepted_arguments(Runner) or set()) | TOP_LEVEL_EXTRA


# ---- checking and merging ------------------------------------------------------------------------------------------

def nearest(name: str, candidates) -> Optional[str]:
    close = difflib.get_close_matches(name, sorted(set(map(str, candidates))), n=1, cutoff=0.6)
    return close[0] if close else None


def _kind(v) -> str:
    if isinstance(v, bool):
        return "true/false"
    if isinstance(v, int):
        return "an integer"
    if isinstance(v, float):
        return "a number"
    if isinstance(v, dict):
        return "a dict"
    return type(v).__name__


def _check_value(path: str, old, new, item: str):
    """``new`` for a key that holds ``old``; returns the value to set (numbers for a string key become text)."""
    if new is None or old is None:
        return new
    if isinstance(old, bool):
        ok = isinstance(new, bool)
    elif isinstance(old, int):
        ok = isinstance(new, int) and not isinstance(new, bool)
    elif isinstance(old, float):
        ok = isinstance(new, (int, float)) and not isinstance(new, bool)
    elif isinstance(old, dict):
        ok = isinstance(new, dict)
        if not ok:
            raise UserError(f"--cfg-options {item}: {path} is a dict ({_show(old)}): set its entries ({path}.KEY="
                            f"VALUE) or {path}=None")
    elif isinstance(old, str):
        return str(new) if isinstance(new, (int, float)) and not isinstance(new, bool) else new
    else:
        return new
    if not ok:
        raise UserError(f"--cfg-options {item}: {path} is {_kind(old)} ({old!r} in the config), not {new!r}")
    return new


def _show(d: dict) -> str:
    return f"type={d['type']!r}" if "type" in d else f"keys {', '.join(map(str, list(d)[:6]))}"


def check_cfg_options(cfg, options: dict) -> dict:
    """Validate ``options`` (``{'a.b.c': value}``, keys may start with ``+``) against ``cfg``; returns them with
    the ``+`` stripped and values adapted. Raises :class:`UserError` naming the nearest key for an unknown one."""
    out = {}
    for raw_key, value in options.items():
        add = raw_key.startswith(ADD)
        key = raw_key.lstrip(ADD)
        item = f"{raw_key}={value!r}" if not isinstance(value, str) else f"{raw_key}={value}"
        parts = key.split(".")
        node: Any = cfg._cfg_dict if hasattr(cfg, "_cfg_dict") else cfg
        for depth, part in enumerate(parts):
            path = ".".join(parts[: depth + 1])
            last = depth == len(parts) - 1
            if isinstance(node, (list, tuple)):
                if not part.lstrip("-").isdigit() or not -len(node) <= int(part) < len(node):
                    raise UserError(f"--cfg-options {item}: {'.'.join(parts[:depth]) or 'the config'} is a list of "
                                    f"{len(node)}: address its entries by index 0..{len(node) - 1}")
                if last:
                    value = _check_value(path, node[int(part)], value, item)
                node = node[int(part)]
                continue
            if not isinstance(node, dict):
                raise UserError(f"--cfg-options {item}: {'.'.join(parts[:depth])} is {node!r}, not a dict, so it has "
                                f"no entry {part!r}")
            if part in node:
                if last:
                    value = _check_value(path, node[part], value, item)
                elif node[part] is None and add:
                    break  # '+' turns the None into a dict
                node = node[part]
                continue
            if add:
                break
            allowed = _top_level_arguments() if depth == 0 else (
                accepted_arguments(resolve_type(node["type"])) if "type" in node else set())
            if allowed is None or part in allowed:
                break  # an argument of the class this dict names: a legitimate new entry
            guess = nearest(part, list(node) + sorted(allowed))
            where = f"in {'.'.join(parts[:depth])}" if depth else "at the top level of the config"
            hint = f"did you mean {'.'.join(parts[:depth] + [guess])}?" if guess else \
                f"existing keys: {', '.join(map(str, list(node)[:12]))}"
            raise UserError(f"--cfg-options {item}: no key {part!r} {where}: {hint} (to add a new entry on purpose, "
                            f"write {ADD}{key}=...)")
        out[key] = value
    return out


def apply_cfg_options(cfg, options: Optional[dict]) -> None:
    """Check ``options`` (:func:`check_cfg_options`) and merge them into ``cfg`` (mmengine's ``merge_from_dict``)."""
    if not options:
        return
    checked = check_cfg_options(cfg, options)
    root = cfg._cfg_dict if hasattr(cfg, "_cfg_dict") else cfg
    for key in checked:  # '+' paths through None: make the dicts mmengine's merge needs
        node = root
        for part in key.split(".")[:-1]:
            if isinstance(node, dict):
                if node.get(part) is None:
                    node[part] = {}
                node = node[part]
            elif isinstance(node, (list, tuple)) and part.lstrip("-").isdigit():
                node = node[int(part)]
            else:
                break
    try:
        cfg.merge_from_dict(checked)
    except (TypeError, KeyError, IndexError) as e:
        raise UserError(f"--cfg-options: {' '.join(str(e).split())}") from None
