#!/usr/bin/env bash
# Set up (if needed) and run the main job on the embedded sample: ADE20K-format segmentation, train + evaluate.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
PYTHONWARNINGS=ignore python tools/demo.py "$@"
