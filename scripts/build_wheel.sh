#!/usr/bin/env bash
# Build the dense-adapters wheel into DIR (default: dist/) and print its path. The wheel carries configs/ and the
# benchmark cases in dense_adapters/.mim/ (setup.py). It is built from a copy of the working tree (tracked files and
# new files git does not ignore), so build/ and *.egg-info never land in the checkout, with the current environment's
# setuptools (no build isolation: nothing is downloaded). PYTHON=... picks the interpreter (default: python).
#   bash scripts/build_wheel.sh [DIR]        ->  DIR/dense_adapters-<version>-py3-none-any.whl
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(mkdir -p "${1:-dist}" && cd "${1:-dist}" && pwd)
PY=${PYTHON:-python}
SRC=$(mktemp -d)
trap 'rm -rf "$SRC"' EXIT
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # --ignore-failed-read: a tracked file deleted in the working tree is left out, as the commit would leave it out
  git ls-files -z -co --exclude-standard | tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -xf - -C "$SRC"
else  # an unpacked sdist or a copy without .git
  tar --exclude=./.venv --exclude=./build --exclude=./dist --exclude=./work_dirs --exclude=./data -cf - . \
    | tar -xf - -C "$SRC"
fi
"$PY" -m pip wheel --no-deps --no-build-isolation --quiet --wheel-dir "$OUT" "$SRC"
ls -t "$OUT"/dense_adapters-*.whl | head -n 1
