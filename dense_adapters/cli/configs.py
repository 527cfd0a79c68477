"""Where the toolkit's configs are, and the one config reader of the tools: ``dense_adapters::NAME.py`` works
wherever a tool takes a config, and as a base of a user's own config.

The configs live in the repository's ``configs/``; a wheel carries a copy in ``dense_adapters/.mim/configs``
(OpenMMLab's place, see ``setup.py``). :func:`config_dir` finds whichever this package has.

mmengine 0.10.7 resolves ``pkg::path`` only for the OpenMMLab packages of its ``MODULE2PACKAGE`` table (an
``assert``) and only for paths with a folder (``\\w*::\\w*/\\w*``), so it refuses
``_base_ = ['dense_adapters::ade20k_regvit.py']`` (open-mmlab/mmengine#1410). Rather than changing mmengine's
table or functions, :func:`read_config` hands mmengine a copy of the user's config whose ``dense_adapters::``
bases are written as absolute paths (nothing is copied when no base in the user's chain uses the prefix).
"""
from __future__ import annotations

import ast
import difflib
import glob
import os
import os.path as osp
import re
import tempfile
from typing import Optional

from ..errors import UserError

PREFIX = "dense_adapters::"


def _package_dir() -> str:
    return osp.dirname(osp.dirname(osp.abspath(__file__)))


def checkout_root() -> Optional[str]:
    """The clone this package runs from (an editable install or ``PYTHONPATH``), or None when it is installed."""
    up = osp.dirname(_package_dir())
    if osp.isfile(osp.join(up, "pyproject.toml")) and osp.isdir(osp.join(up, "configs")):
        return up
    return None


def mim_dir(folder: str) -> Optional[str]:
    """``folder`` (``configs`` or ``benchmarks``) as the installed package carries it, else the checkout's."""
    installed = osp.join(_package_dir(), ".mim", folder)
    if osp.isdir(installed):
        return installed
    root = checkout_root()
    if root is not None and osp.isdir(osp.join(root, folder)):
        return osp.join(root, folder)
    return None


def config_dir() -> str:
    """The folder ``dense_adapters::NAME`` refers to."""
    d = mim_dir("configs")
    if d is None:
        raise UserError(f"this dense_adapters ({_package_dir()}) has no configs: reinstall it from a wheel built by "
                        "`pip wheel` of the repository, or run from a clone")
    return d


def list_configs() -> list[str]:
    """The names ``dense_adapters::NAME`` accepts (leaves and aliases; bases as ``_base_/...``)."""
    root = config_dir()
    return sorted(osp.relpath(p, root).replace(os.sep, "/")
                  for p in glob.glob(osp.join(root, "**", "*.py"), recursive=True))


def resolve_config(path: str) -> str:
    """The absolute file of ``path``: ``dense_adapters::NAME.py`` (a config of this package) or a file path."""
    if path.startswith(PREFIX):
        name = path[len(PREFIX):].lstrip("/")
        full = osp.join(config_dir(), name)
        if not osp.isfile(full):
            close = difflib.get_close_matches(name, list_configs(), n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(PREFIX + c for c in close)}?" if close else \
                f"the names are the files of {config_dir()}"
            raise UserError(f"no config {path!r} in this package: {hint}")
        return full
    if "::" in path:
        raise UserError(f"config {path!r}: a tool takes a file or {PREFIX}NAME.py; other packages' configs "
                        "(mmseg::...) can be bases of your own config")
    full = osp.abspath(osp.expanduser(path))
    if not osp.isfile(full):
        raise UserError(f"config not found: {path}: give the path of a config file or {PREFIX}NAME.py "
                        "(e.g. dense_adapters::ade20k_regvit.py)")
    return full


def read_config(path: str):
    """The mmengine ``Config`` of ``path`` (a file or ``dense_adapters::NAME.py``), its ``dense_adapters::`` bases
    resolved. The returned config's ``filename`` has the user's file name."""
    from mmengine.config import Config

    real = resolve_config(path)
    with tempfile.TemporaryDirectory(prefix="dense_adapters_cfg_") as tmp:
        try:
            return Config.fromfile(_with_resolved_bases(real, tmp, {}))
        except SyntaxError as e:  # one line for a syntax error or a config that fails to run
            name = path if not e.filename or e.filename.startswith("<") or tmp in e.filename else e.filename
            where = f"{name}, line {e.lineno}" if e.lineno else name  # mmengine parses "<unknown>"
            raise UserError(f"config {path} has a syntax error ({where}: {e.msg}): fix the file") from None
        except (NameError, ImportError, KeyError, AttributeError, TypeError, ValueError) as e:
            text = " ".join(str(e).split())
            raise UserError(f"cannot load config {path} ({type(e).__name__}: {text[:300]}): fix the file or its "
                            "_base_ files") from None


# ---- rewriting a user's chain ---------------------------------------------------------------------------------------

def _base_node(tree: ast.Module) -> Optional[ast.Assign]:
    """The ``_base_ = ...`` statement mmengine reads (the first top-level one)."""
    return next((n for n in tree.body if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)
                 and n.targets[0].id == "_base_"), None)


def _predefined(filename: str) -> dict:
    # mmengine's four predefined variables, with the values they have for the user's own file
    base = osp.basename(filename)
    return {"fileDirname": osp.dirname(filename), "fileBasename": base,
            "fileBasenameNoExtension": osp.splitext(base)[0], "fileExtname": osp.splitext(filename)[1]}


def _substitute_predefined(text: str, filename: str) -> str:
    for key, value in _predefined(filename).items():
        text = re.sub(r"\{\{\s*" + key + r"\s*\}\}", value.replace("\\", "/"), text)
    return text


def _with_resolved_bases(filename: str, tmp: str, done: dict) -> str:
    """``filename`` itself when no base in its chain of user files uses ``dense_adapters::``; else a copy in ``tmp``
    (same file name) whose ``_base_`` lists absolute paths. The package's own configs never use the prefix."""
    if filename in done:
        return done[filename]
    done[filename] = filename
    if not filename.endswith(".py"):
        return filename
    with open(filename, encoding="utf-8") as f:
        text = _substitute_predefined(f.read(), filename)
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return filename  # mmengine reports it, with the file and line
    node = _base_node(tree)
    if node is None:
        return filename
    try:
        bases = ast.literal_eval(node.value)
    except ValueError:
        return filename  # not a literal list: leave it to mmengine
    bases = [bases] if isinstance(bases, str) else list(bases)
    new, changed = [], False
    for base in bases:
        if not isinstance(base, str) or "{{" in base:
            new.append(base)
        elif base.startswith(PREFIX):
            new.append(resolve_config(base))
            changed = True
        elif "::" in base or osp.isabs(base):
            new.append(base)
        else:
            target = osp.normpath(osp.join(osp.dirname(filename), base))
            sub = _with_resolved_bases(target, tmp, done) if osp.isfile(target) else target
            changed |= sub != target
            new.append(sub)
    if not changed:
        return filename
    # replace the statement's source (ast offsets count UTF-8 bytes); everything else stays as the user wrote it
    lines = text.encode("utf-8").splitlines(keepends=True)
    start = sum(len(x) for x in lines[:node.lineno - 1]) + node.col_offset
    end = sum(len(x) for x in lines[:node.end_lineno - 1]) + node.end_col_offset
    data = b"".join(lines)
    out = osp.join(tempfile.mkdtemp(dir=tmp), osp.basename(filename))
    with open(out, "wb") as f:
        f.write(data[:start] + f"_base_ = {new!r}".encode("utf-8") + data[end:])
    done[filename] = out
    return out
