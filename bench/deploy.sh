#!/bin/sh
# The deployment profile of issue 15 on ML-100K u1..u5 with the defaults
# a new user gets: fedrec-sim --train uN.base --test uN.test --fraction F
# --dropout 0.1 (no --algo, no --secure-agg: VBMF on every device's latest
# statistics, deltas masked with SecAgg+, 60 rounds). One JSON line per
# split (rmse, rounds, algo, secure_agg, wall seconds, bytes up per
# contributing device), then the mean RMSE.
# Env: FR_DATA_DIR, FR_BUILD_DIR (build), FRACTION (0.1), SPLITS
# ("1 2 3 4 5"), EXTRA (more fedrec-sim flags, e.g. "--secure-agg off").
set -eu
bench_name=deploy.sh
. "$(dirname "$0")/lib.sh"
bin=$(bench_tool fedrec-sim)
bench_need_ml100k
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
for s in ${SPLITS:-1 2 3 4 5}; do
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    "$bin" --train "$data/u$s.base" --test "$data/u$s.test" \
        --fraction "${FRACTION:-0.1}" --dropout 0.1 --json --quiet \
        --no-reference ${EXTRA:-} | tail -1 >"$tmp.run"
    t1=$(date +%s.%N)
    jq -c --arg s "u$s" --arg w "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
      '{split: $s, rmse, rounds, algo, secure_agg, wall_s: ($w | tonumber),
        bytes_up_per_device: (.bytes_up / .clients), clients, dropped}' \
      "$tmp.run" | tee -a "$tmp"
done
rm -f "$tmp.run"
jq -s -c '{mean_rmse: (map(.rmse) | add / length), splits: length}' "$tmp"
