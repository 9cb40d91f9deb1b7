#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs ctest.
# FR_DATA_DIR points at MovieLens 100K (default ../shared/data/ml-100k).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
ctest --test-dir "${FR_BUILD_DIR:-build}" --output-on-failure -j 2
