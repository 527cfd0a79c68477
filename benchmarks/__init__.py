"""The benchmark's cases (:mod:`.cases`: what is timed) and suites (:mod:`.suites`: which cases are compared).

Not part of the installed package (as timm keeps its benchmark outside its package): ``dense-adapters-benchmark``
(``tools/benchmark.py``) loads this folder from the checkout and times it with ``dense_adapters.benchmark``.
"""
from . import cases, suites  # noqa: F401
