"""Helpers of the mm layer (as ``mmseg.utils``): register every class of ours and mmseg's; config-tree edits."""
from __future__ import annotations


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every registered class (mmseg's and ours) and, by default, make 'mmseg' the default scope."""
    from . import registry  # noqa: F401  (the mmcv-lite shim, before mmseg is imported)
    from mmseg.utils import register_all_modules as register_mmseg

    register_mmseg(init_default_scope=init_default_scope)
    import dense_adapters.datasets  # noqa: F401
    import dense_adapters.engine  # noqa: F401
    import dense_adapters.evaluation  # noqa: F401
    import dense_adapters.models  # noqa: F401


def replace_syncbn(node) -> None:
    """Turn every SyncBN of a config (dict/list tree) into BN, in place (one process, or CPU modules)."""
    if isinstance(node, dict):
        if node.get("type") == "SyncBN":
            node["type"] = "BN"
        for v in node.values():
            replace_syncbn(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            replace_syncbn(v)
