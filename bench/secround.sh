#!/bin/sh
# The secure round at 1,000 members against the plain one (issue 15's
# critical-path targets; docs/BENCHMARKS.md "Round time and communication
# at 1,000 clients per round"): synthetic 1,000 users x 2,000 items, every
# user in the cohort, SecAgg+ (degree 100) or plain, for the gradient
# vector (round 1, d = 22,002 words) and the vector the default algorithm
# sends (VBMF latest statistics, k 4, round 2), without dropout and with
# 30% of the members vanishing after their shares. Per configuration,
# REPS runs of plain then secure one after the other; the ratio of a run
# is (aggregator CPU + slowest device) secure / plain. Prints one JSON
# line per configuration with the runs and the median ratio.
# Env: FR_BUILD_DIR (build), REPS (3), VECTORS ("gradient default"),
# DROPOUTS ("0 0.3").
set -eu
bench_name=secround.sh
. "$(dirname "$0")/lib.sh"
bin=$(bench_tool fedrec-sim)
syn="--synthetic users=1000,items=2000,k=4,density=0.05,seed=1"
common="--clients-per-round 1000 --no-reference --json --eval-every 0 --shared-model --transport direct"

# run VECTOR DROPOUT MODE: one JSON object of the last round's costs.
run() {
    if [ "$1" = gradient ]; then
        args="--algo grad --rounds 1 --clip 1"
    else
        args="--rounds 2 --k 4 --stats-latest 1"
    fi
    drop=""
    [ "$2" = 0 ] || drop="--dropout $2"
    # shellcheck disable=SC2086
    "$bin" $syn $common $args $drop --secure-agg "$3" 2>/dev/null |
        jq -c -s '(map(select(.round != null)) | last) as $r
          | (map(select(.agg_seconds_per_round != null)) | last) as $s
          | {agg: $r.agg_seconds, slowest: ($r.client_seconds_max // 0),
             bytes_up: (if $r.clients > 0 then $r.bytes_up / $r.clients
                        else null end),
             rmse: $s.rmse}'
}

for v in ${VECTORS:-gradient default}; do
    for d in ${DROPOUTS:-0 0.3}; do
        runs=""
        i=0
        while [ "$i" -lt "${REPS:-3}" ]; do
            p=$(run "$v" "$d" off)
            s=$(run "$v" "$d" plus)
            runs="$runs{\"plain\":$p,\"secure\":$s},"
            i=$((i + 1))
        done
        echo "[${runs%,}]" | jq -c --arg v "$v" --arg d "$d" '
          map(. + {ratio: ((.secure.agg + .secure.slowest)
                           / (.plain.agg + .plain.slowest))}) as $runs
          | ($runs | map(.ratio) | sort) as $r
          | {vector: $v, dropout: ($d | tonumber), runs: $runs,
             ratios: $r, median_ratio: $r[(($r | length) / 2 | floor)]}'
    done
done
