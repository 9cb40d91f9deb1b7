#!/bin/sh
# A catalog that grows (issue 10): fedrec-sim --new-items N@R starts the
# aggregator without the data's last N items and asks it to add them in
# round R (fri_agg_grow_items); devices hold their ratings of them from the
# start. For each case one run with the growth and one control run with
# the same items in the catalog from the start (N@0), same seed: the new
# items' test RMSE in both (vs_control = grown / control), the RMSE of old
# items matched to them by training rating count, and whether any round
# was abandoned or any check-in failed. One JSON line per case.
# Cases: 1,000 synthetic devices and 100 items added after round 20 of 40
# (every device every round, and the deployment profile: --fraction 0.1
# --dropout 0.1, SecAgg+); ML-100K u1, the last 100 item ids added after
# round 40 of the profile's 60.
# Env: FR_DATA_DIR, FR_BUILD_DIR (build).
set -eu
bench_name=catalog.sh
. "$(dirname "$0")/lib.sh"
bin=$(bench_tool fedrec-sim)
bench_need_ml100k
syn="--synthetic users=1000,items=1100,k=8,density=0.05,seed=1 --rounds 40"
ml="--train $data/u1.base --test $data/u1.test"
prof="--fraction 0.1 --dropout 0.1"
one() { # name, flags, N@R
    # shellcheck disable=SC2086
    g=$("$bin" $2 --new-items "$3" --json --no-reference 2>/dev/null)
    c=$("$bin" $2 --new-items "${3%@*}@0" --json --no-reference --quiet \
        2>/dev/null | tail -1)
    printf '%s\n' "$g" | jq -s -c --arg n "$1" --argjson c "$c" '
        (.[-1]) as $s | (.[:-1]) as $r |
        {case: $n, rounds: $s.rounds, rmse: $s.rmse,
         new_items: $s.new_items.items, after_round: $s.new_items.after_round,
         new_rmse: $s.new_items.rmse, control_new_rmse: $c.new_items.rmse,
         vs_control: (($s.new_items.rmse / $c.new_items.rmse) * 1e4
                      | round / 1e4),
         matched_rmse: $s.new_items.matched_rmse,
         new_ratings: $s.new_items.ratings,
         rounds_abandoned: $s.rounds_abandoned,
         failed_checkins: ($r | map(.failed) | add)}'
}
one synthetic-1000-every-round "$syn" 100@20
one synthetic-1000-profile "$syn $prof" 100@20
one ml100k-u1-profile "$ml $prof" 100@40
