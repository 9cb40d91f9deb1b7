#!/bin/sh
# Asynchronous buffered mode vs synchronous rounds on ML-100K u1
# (docs/BENCHMARKS.md, "Buffered mode"). Every run: fedrec-sim's default
# for partial cohorts (VBMF on latest statistics), plain aggregation
# (buffered mode excludes masking), 10% of the devices arriving per tick
# (a synchronous round is one tick), FR_BUF_TICKS ticks, the RMSE of the
# same evaluation users every FR_BUF_EVERY ticks. Rows: synchronous
# rounds with every arrival reporting in time, synchronous rounds where
# the slow devices (FR_BUF_SLOW of the arrivals) miss the deadline
# (--dropout), and buffered mode with K and S (FR_BUF_K, FR_BUF_S), where
# the slow devices report 1..3 ticks late instead. Prints ONE JSON object.
# FR_BUF_VALID=1: the K x S grid (FR_BUF_KS, FR_BUF_SS) on a seeded 90/10
# split of u1.base instead (u1.test is not read), to choose K and S.
# FR_BUF_FLAGS: extra flags for every row (e.g. the gradient FedAvg
# settings "--algo grad --server-opt adam --lr 0.03 --reg 2 --reg-bias 1").
# Env: FR_DATA_DIR, FR_BUILD_DIR (build).
set -eu
bench_name=buffered.sh
. "$(dirname "$0")/lib.sh"
bin=$(bench_tool fedrec-sim)
ticks=${FR_BUF_TICKS:-60}
every=${FR_BUF_EVERY:-10}
slow=${FR_BUF_SLOW:-0.2}
k=${FR_BUF_K:-47}
s=${FR_BUF_S:-4}
bench_need_ml100k
tmp=$(mktemp)
vdir=$(mktemp -d)
trap 'rm -rf "$tmp" "$vdir"' EXIT
train=$data/u1.base test=$data/u1.test name="ml-100k u1"
if [ "${FR_BUF_VALID:-0}" = 1 ]; then
    awk -v b="$vdir/base" -v t="$vdir/test" 'BEGIN { srand(7) }
        { if (rand() < 0.1) print > t; else print > b }' "$data/u1.base"
    train=$vdir/base test=$vdir/test
    name="ml-100k u1 validation (seeded 90/10 of u1.base)"
fi
base="${FR_BUF_FLAGS:-} --train $train --test $test --fraction 0.1 --secure-agg off
 --rounds $ticks --eval-every $every --no-reference --json
 --transport direct --seed 42"
row() { # name, extra flags
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    "$bin" $base $2 >"$vdir/out"
    t1=$(date +%s.%N)
    jq -s -c --arg n "$1" --arg a "$2" \
        --arg w "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" '
      (map(select(.summary)) | .[0]) as $s |
      {name: $n, flags: $a, rmse: $s.rmse, ticks: $s.rounds,
       steps: ($s.steps // $s.rounds),
       reports_accepted: $s.clients,
       reports_stale: ($s.reports_stale // 0),
       mean_staleness: ($s.mean_staleness // 0),
       rmse_by_tick: [.[] | select(.round != null and .rmse != null)
                      | {tick: .round, rmse}],
       wall_s: ($w | tonumber)}' "$vdir/out" >>"$tmp"
}
if [ "${FR_BUF_VALID:-0}" = 1 ]; then
    row sync ""
    for kk in ${FR_BUF_KS:-24 47 94}; do
        for ss in ${FR_BUF_SS:-1 2 4 8}; do
            row "buffered-k$kk-s$ss" "--buffer $kk --max-staleness $ss --slow $slow"
        done
    done
else
    row sync ""
    row sync-slow-miss-deadline "--dropout $slow"
    row "buffered-k$k-s$s" "--buffer $k --max-staleness $s --slow $slow"
fi
jq -s --arg d "$name" --arg slow "$slow" \
    --arg f "${FR_BUF_FLAGS:-}" \
    '{bench: "buffered", data: $d, flags: $f, slow: ($slow | tonumber),
      rows: .}' "$tmp"
