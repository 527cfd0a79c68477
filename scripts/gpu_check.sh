#!/usr/bin/env bash
# The GPU check: measures and checks every GPU path of the toolkit (benchmarks/gpu_check.py; docs/gpu_check.md).
#   bash scripts/gpu_check.sh              # on a CUDA machine: docs/benchmarks_gpu.md and .json (+ $OUT copies)
#   bash scripts/gpu_check.sh --dry-run    # CPU, tiny sizes, reports in a temporary folder (what CI runs)
#   bash scripts/gpu_check.sh --help       # steps, options
# Where mmengine/mmcv/mmseg are missing (the device machine has torch but no registry), it installs the wheels of
# scripts/gpu_wheels.sh from .whl/ into a folder of its own (GPU_CHECK_SITE) and puts that first on PYTHONPATH.
# The package itself: the carried wheel when it was built from this checkout, else this checkout's code.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PY=${PYTHON:-python3}
WHEELS=${WHEEL_DIR:-.whl}
SITE=${GPU_CHECK_SITE:-/tmp/dense_adapters_site}
pkg_wheel=$(ls "$WHEELS"/dense_adapters-*.whl 2>/dev/null | head -1)
fresh=0
if [ -n "$pkg_wheel" ] && [ -f "$WHEELS/dense_adapters.sha256" ] \
   && [ "$("$PY" benchmarks/gpu_check.py --source-hash)" = "$(cat "$WHEELS/dense_adapters.sha256")" ]; then
  fresh=1
fi
install=()
if ! "$PY" -c "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in
    ('mmengine', 'mmcv', 'mmseg', 'ftfy', 'timm')))" >/dev/null 2>&1; then
  deps=$(ls "$WHEELS"/*.whl 2>/dev/null | grep -v '/dense_adapters-')
  if [ -z "$deps" ]; then
    echo "error: mmengine, mmcv or mmseg is not importable with $PY and $WHEELS/ holds no wheels: run" \
         "'bash scripts/gpu_wheels.sh' where a package registry is reachable and carry $WHEELS (docs/gpu_check.md)" >&2
    exit 2
  fi
  install+=($deps)
fi
[ "$fresh" = 1 ] && install+=("$pkg_wheel")
if [ ${#install[@]} -gt 0 ]; then
  echo "gpu_check: installing ${#install[@]} carried wheels into $SITE"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
    "${install[@]}" || { echo "error: installing the wheels of $WHEELS into $SITE failed" >&2; exit 2; }
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
if [ "$fresh" = 1 ]; then
  echo "gpu_check: dense_adapters from the carried wheel $(basename "$pkg_wheel") (built from this checkout)"
else
  [ -n "$pkg_wheel" ] && echo "gpu_check: $(basename "$pkg_wheel") was not built from this checkout: using the checkout's code"
  export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
fi
exec "$PY" benchmarks/gpu_check.py --python "$PY" "$@"
