#!/usr/bin/env bash
# Create .venv with everything dense-adapters needs; idempotent, nothing is compiled.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
if ! python -c "import dense_adapters, mmseg, timm" >/dev/null 2>&1 || [ pyproject.toml -nt .venv/.installed ]; then
  python -m pip install -q --upgrade "pip<26" wheel "setuptools<81"
  # torch and torchvision as one matched pair first, so nothing later pulls another torch
  if ! python -c "import torch, torchvision" >/dev/null 2>&1; then
    python -m pip install -q "torch==${TORCH_VERSION:-2.14.1}" "torchvision==${TORCHVISION_VERSION:-0.29.1}"
  fi
  # mmcv: keep a full (compiled) mmcv if present, else the pure-Python mmcv-lite; m2f: mmdet for Mask2Former;
  # test-refs: transformers and open_clip, the independent references of the checkpoint-equivalence tests
  if python -c "import mmcv._ext" >/dev/null 2>&1; then EXTRA=dev,m2f,test-refs; else EXTRA=dev,lite,m2f,test-refs; fi
  python -m pip install -q -e ".[${EXTRA}]"
  touch .venv/.installed
fi
