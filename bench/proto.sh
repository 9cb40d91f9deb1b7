#!/usr/bin/env bash
# Wire-format throughput: encode+seal / open+decode of UPDATE frames vs raw
# XChaCha20-Poly1305 on the same byte counts. Prints JSON on stdout.
# Env: FR_BUILD_DIR (default build). Extra args go to fedrec-bench-proto
# (--runs N, --ms M).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${FR_BUILD_DIR:-build}
if [ ! -x "$dir/bin/fedrec-bench-proto" ]; then
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$dir" --target fedrec-bench-proto -j 2 >/dev/null
fi
exec "$dir/bin/fedrec-bench-proto" "$@"
