#!/usr/bin/env bash
# Wheels for scripts/gpu_check.sh on a GPU machine that has python3 with torch but no package registry (the device
# machine of docs/gpu_check.md): mmengine, mmcv-lite, mmsegmentation, their pure-Python dependencies that image
# lacks, setuptools<81 (mmengine's pkg_resources), timm (the version the CPU numbers used) and this package.
# Run it here, where a registry is reachable; it fills .whl/ (git-ignored; carry it: docs/gpu_check.md).
#   bash scripts/gpu_wheels.sh          # versions: those PYTHON (default python3) has installed, else the pins below
# Environment: PYTHON, WHEEL_DIR (default .whl), TARGET_PYTHON (the GPU machine's Python, default 3.12).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEST=${WHEEL_DIR:-.whl}
TARGET_PY=${TARGET_PYTHON:-3.12}
# name=version fallbacks (the versions the toolkit is tested with); every one is a pure-Python wheel
PINS="mmengine=0.10.7 mmcv-lite=2.1.0 mmsegmentation=1.2.2 timm=1.0.31 ftfy=6.3.1 addict=2.4.0 termcolor=3.3.0
yapf=0.43.0 platformdirs=4.14.9 prettytable=3.18.0 wcwidth=0.9.4 setuptools=80.10.2"
mkdir -p "$DEST"
rm -f "$DEST"/*.whl "$DEST"/MANIFEST.txt "$DEST"/dense_adapters.sha256   # one version of each, or pip refuses
specs=()
for pin in $PINS; do
  name=${pin%%=*}
  ver=$("$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name" 2>/dev/null \
        || echo "${pin#*=}")
  specs+=("$name==$ver")
done
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$TARGET_PY" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform any -d "$DEST" "${specs[@]}"
# this package, built from a copy of the checkout (no build/ or egg-info left in the tree)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r pyproject.toml README.md dense_adapters "$tmp/"
find "$tmp" -name __pycache__ -prune -exec rm -rf {} +
if "$PY" -c "import setuptools, sys; sys.exit(int(setuptools.__version__.split('.')[0]) >= 81)" 2>/dev/null; then
  "$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$DEST" "$tmp"
else
  "$PY" -m pip wheel -q --no-deps -w "$DEST" "$tmp"
fi
"$PY" benchmarks/gpu_check.py --source-hash > "$DEST/dense_adapters.sha256"
{
  echo "# wheels for scripts/gpu_check.sh, $(date -Iseconds), checkout $(git rev-parse --short HEAD 2>/dev/null || echo ?)"
  printf '%s\n' "${specs[@]}"
  (cd "$DEST" && ls -1 ./*.whl)
} > "$DEST/MANIFEST.txt"
total=$(du -cm "$DEST"/*.whl | tail -1 | cut -f1)
echo "wrote $(ls "$DEST"/*.whl | wc -l) wheels (${total} MiB) to $DEST/; carry it: run(command='bash scripts/gpu_check.sh', carry=['$DEST'])"
if [ "$total" -gt 48 ]; then echo "warning: over 48 MiB: the working tree that travels is limited to 64 MiB" >&2; fi
