#!/usr/bin/env bash
# Installs (if needed) and runs the whole test suite: unit tests on tiny models, integration tests on
# a small real slice of ../shared/data/squad2/dev-v2.0.json. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/python -m pytest -q "$@"
