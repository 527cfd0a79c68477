"""Registered datasets of dense-adapters; every module below is imported so that registration happens."""
from .. import registry  # noqa: F401  (applies dense_adapters.compat before mmseg is imported)
from .._imports import import_submodules

import_submodules(__name__, __path__)
