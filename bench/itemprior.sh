#!/bin/sh
# Item content features in VBMF's item prior (--item-features u.item: the
# 19 genre flags): test RMSE without and with them, on u1..u5 with every
# device in every round (the plain federated default, 16 rounds), then on
# SPLITS_PROFILE (u1) in the deployment profile (--fraction 0.1 --dropout
# 0.1, SecAgg+, 60 rounds), and there the RMSE of the items that join the
# catalog after round 40 (--new-items 100@40) and of the same items present
# from the start (100@0). One JSON line per run, then the means.
# Env: FR_DATA_DIR, FR_BUILD_DIR (build), SPLITS ("1 2 3 4 5"),
# SPLITS_PROFILE ("1").
set -eu
bench_name=itemprior.sh
. "$(dirname "$0")/lib.sh"
bin=$(bench_tool fedrec-sim)
bench_need_ml100k
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
feat="--item-features $data/u.item"
run() { # split, profile name, features (0/1), extra flags
    f=
    if [ "$3" = 1 ]; then f=$feat; fi
    # shellcheck disable=SC2086
    "$bin" --train "$data/u$1.base" --test "$data/u$1.test" $4 $f --json \
        --quiet --no-reference | tail -1 |
        jq -c --arg s "u$1" --arg p "$2" --argjson f "$3" \
            '{split: $s, profile: $p, features: ($f == 1), rmse, rounds,
              new_items_rmse: (.new_items.rmse // null)}' | tee -a "$tmp"
}
for s in ${SPLITS:-1 2 3 4 5}; do
    run "$s" every-round 0 "--transport direct"
    run "$s" every-round 1 "--transport direct"
done
prof="--fraction 0.1 --dropout 0.1"
for s in ${SPLITS_PROFILE:-1}; do
    run "$s" deployment 0 "$prof"
    run "$s" deployment 1 "$prof"
    for g in 100@40 100@0; do
        run "$s" "deployment new-items $g" 0 "$prof --new-items $g"
        run "$s" "deployment new-items $g" 1 "$prof --new-items $g"
    done
done
jq -s -c 'group_by([.profile, .features]) | map({profile: .[0].profile,
    features: .[0].features, runs: length,
    mean_rmse: (map(.rmse) | add / length),
    mean_new_items_rmse: (map(.new_items_rmse) | if any(. == null) then null
                          else add / length end)})' "$tmp"
