#!/bin/sh
# Real-time behaviour on the device (docs/BENCHMARKS.md): latency of one
# new interaction to a fresh top 10 (fr_client_add + fr_client_fold_in +
# fr_client_recommend) for k = 32 over 10,000- and 100,000-item catalogs,
# one thread, for an explicit ridge (ALS) model, a variational (VBMF, the
# explicit default) one and an implicit (iALS) one with the
# device's recency weighting. Prints one JSON line per model and catalog.
# Env: FR_BUILD_DIR (default build), REPS (default 1000), HISTORY (50).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FR_BUILD_DIR:-$root/build}
bin=$build/bin/fedrec-bench-foldin
[ -x "$bin" ] || cmake --build "$build" --target fedrec-bench-foldin -j2 >/dev/null
for model in explicit vbmf implicit; do
    for n in 10000 100000; do
        taskset -c 0 "$bin" "$n" 32 "${HISTORY:-50}" "${REPS:-1000}" "$model"
    done
done
