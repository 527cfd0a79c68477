"""The benchmark's cases (:mod:`.cases`: what is timed) and suites (:mod:`.suites`: which cases are compared).

Not a subpackage of ``dense_adapters`` (as timm keeps its benchmark outside its package): ``dense-adapters-benchmark``
(``tools/benchmark.py``) loads this folder from the checkout, or the copy a wheel carries in
``dense_adapters/.mim/benchmarks`` (setup.py), and times it with ``dense_adapters.benchmark``.
"""
from . import cases, suites  # noqa: F401
