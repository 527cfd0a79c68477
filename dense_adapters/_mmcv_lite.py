"""The one import-time shim: a stand-in ``mmcv._ext`` so that mmseg imports under mmcv-lite.

mmcv-lite ships no compiled ``mmcv._ext``, and mmseg imports ``mmcv.ops`` at module level in files our models never
use. :func:`install` puts a stand-in module in ``sys.modules`` (only where the real one is missing); any op looked
up on it raises :class:`~dense_adapters.errors.CompiledOpUnavailable` naming the op when it is called.
``dense_adapters.registry`` calls :func:`install` before it imports mmseg, so importing any registered part of the
toolkit is enough. Nothing else here touches a third-party library.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types

from .errors import CompiledOpUnavailable


class MissingExt(types.ModuleType):
    """Stand-in for ``mmcv._ext``: every attribute is a function that raises a one-line explanation."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)

        def unavailable(*args, **kwargs):
            raise CompiledOpUnavailable(
                f"mmcv op '{name}' needs compiled mmcv, but only mmcv-lite is installed: install full mmcv "
                "(pip install 'mmcv>=2.0.0rc4,<2.2.0' builds it) or pick a model that does not use this op")

        unavailable.__name__ = name
        return unavailable


def has_compiled_mmcv() -> bool:
    """True when the real ``mmcv._ext`` is importable (full mmcv), False under mmcv-lite."""
    mod = sys.modules.get("mmcv._ext")
    if isinstance(mod, MissingExt):
        return False
    try:
        return importlib.util.find_spec("mmcv._ext") is not None
    except (ImportError, ValueError):
        return False


def install() -> None:
    """Put the stand-in in place if mmcv is installed without its compiled ops (idempotent)."""
    if "mmcv._ext" in sys.modules or importlib.util.find_spec("mmcv") is None:
        return
    if importlib.util.find_spec("mmcv._ext") is not None:
        return
    ext = MissingExt("mmcv._ext")
    ext.__spec__ = importlib.machinery.ModuleSpec("mmcv._ext", loader=None)  # mmengine inspects the spec
    sys.modules["mmcv._ext"] = ext
