#!/usr/bin/env bash
# Run HERE (the CPU box, with network access to PyPI) before a GPU lease: assembles .gpu/ (git-ignored),
# which the device tool carries to the GPU machine for scripts/gpu_run.sh:
#   .gpu/whl/   wheels the GPU image lacks (Optuna and what it needs), for its Python 3.12;
#   .gpu/data/  the shared data, gzipped (the device tool carries at most 64 MiB with the working tree).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu/whl .gpu/data
PLATFORMS="--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64"
for package in "optuna<6" sqlalchemy alembic colorlog greenlet mako; do
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    $PLATFORMS --platform any -d .gpu/whl "$package"
done
gzip -9 -c ../shared/data/squad2/dev-v2.0.json > .gpu/data/dev-v2.0.json.gz
gzip -9 -c ../shared/data/squad2/train-v2.0-first10articles.json > .gpu/data/train-v2.0-first10articles.json.gz
cp ../shared/data/squad1/train-v1.1.explorer-rebuilt.json.gz .gpu/data/
du -sh .gpu/whl .gpu/data
