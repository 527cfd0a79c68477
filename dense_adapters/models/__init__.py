"""Registered models of dense-adapters; every module below is imported so that registration happens."""
from .. import registry  # noqa: F401  (the mmcv-lite shim before mmseg, and our registries)
from .._imports import import_submodules

import_submodules(__name__, __path__)
