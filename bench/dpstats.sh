#!/bin/sh
# DP on the latest statistics (docs/DP.md section 7, docs/BENCHMARKS.md
# "DP on the latest statistics"): the default algorithm (VBMF, latest
# statistics) on a seeded synthetic population, with and without
# --dp central, same cohorts and rounds; z is the smallest noise multiplier
# that the accountant (fedrec-bench-dpz) gives for the target epsilon at
# q = fraction, and the run reports its own epsilon. Plain aggregation
# (--secure-agg off): DP on masked statistics is not implemented; the noise
# in the released sums would be the same. Prints ONE JSON object.
# Env: FR_DPS_SYNTH (users=100000,items=1000,density=0.02,seed=1; skip:
# no synthetic rows),
# FR_DPS_FRACTION (0.2), FR_DPS_ROUNDS (10), FR_DPS_EPS (3.95),
# FR_DPS_DELTA (1e-5), FR_DPS_CLIPS ("5": space-separated clip bounds, one
# DP row each), FR_DPS_EVAL_USERS (5000), FR_DPS_ML100K=1 (also u1 with
# the same flags; u1.test is only scored, never used to choose settings).
set -eu
bench_name=dpstats.sh
. "$(dirname "$0")/lib.sh"
sim=$(bench_tool fedrec-sim)
dpz=$(bench_tool fedrec-bench-dpz)
synth=${FR_DPS_SYNTH:-users=100000,items=1000,density=0.02,seed=1}
frac=${FR_DPS_FRACTION:-0.2}
rounds=${FR_DPS_ROUNDS:-10}
eps=${FR_DPS_EPS:-3.95}
delta=${FR_DPS_DELTA:-1e-5}
clips=${FR_DPS_CLIPS:-5}
evu=${FR_DPS_EVAL_USERS:-5000}
z=$("$dpz" "$frac" "$rounds" "$eps" "$delta" | jq -r .noise_multiplier)
run() { # name, data flags, extra flags
    # shellcheck disable=SC2086
    "$sim" $2 --fraction "$frac" --rounds "$rounds" --secure-agg off \
        --eval-every 0 --json $3 2>/dev/null | tail -1 |
        jq -c --arg n "$1" --arg f "$3" '{name: $n, flags: $f, rmse, mae,
            epsilon, delta, rounds, rounds_abandoned, seconds}'
}
rows=$(
    if [ "$synth" != skip ]; then
        d="--synthetic $synth --eval-users $evu"
        run nodp "$d" ""
        for c in $clips; do
            run "dp_clip_$c" "$d" "--dp central --clip $c --noise-multiplier $z --dp-delta $delta"
        done
    fi
    if [ "${FR_DPS_ML100K:-0}" = 1 ]; then
        bench_need_ml100k
        u="--train $data/u1.base --test $data/u1.test"
        run u1_nodp "$u" ""
        for c in $clips; do
            run "u1_dp_clip_$c" "$u" "--dp central --clip $c --noise-multiplier $z --dp-delta $delta"
        done
    fi
)
echo "$rows" | jq -s -c --arg s "$synth" --argjson q "$frac" \
    --argjson r "$rounds" --argjson z "$z" '
    (map({(.name): .rmse}) | add) as $by | {synthetic: $s, fraction: $q,
    rounds: $r, noise_multiplier: $z, rows: .,
    rmse_vs_nodp_percent: ([ .[] | select(.name | test("nodp") | not) |
      (if (.name | startswith("u1_")) then $by.u1_nodp else $by.nodp end)
        as $b | {(.name): ((.rmse / $b - 1) * 10000 | round / 100)} ] | add)}'
