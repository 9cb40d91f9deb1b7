#!/bin/sh
# Cold start on the device (issue 10): fedrec-sim --report cold-start on
# ML-100K uN.base/uN.test. A seeded tenth of the users with >= 20 training
# ratings never trains; after the last round each folds in its first 1, 3,
# 5, 10, 20 ratings on its device against the final model and scores its
# test ratings. One JSON line per split with the curve (device RMSE and the
# item-mean baseline per point), then the means over the splits and the
# device's gain over the item means after 5 ratings.
# Env: FR_DATA_DIR, FR_BUILD_DIR (build), SPLITS ("1 2 3 4 5"), EXTRA (more
# fedrec-sim flags; default: every device in every round, the plain
# federated VBMF default, --transport direct).
set -eu
bench_name=features.sh
. "$(dirname "$0")/lib.sh"
bin=$(bench_tool fedrec-sim)
bench_need_ml100k
command -v jq >/dev/null || { echo "features.sh: needs jq" >&2; exit 1; }
tmp=$(mktemp)
trap 'rm -f "$tmp" "$tmp.run"' EXIT
for s in ${SPLITS:-1 2 3 4 5}; do
    # shellcheck disable=SC2086
    "$bin" --train "$data/u$s.base" --test "$data/u$s.test" \
        --report cold-start --transport direct --json --quiet --no-reference \
        ${EXTRA:-} | tail -1 >"$tmp.run"
    jq -c --arg s "u$s" '{split: $s, rmse, algo, secure_agg,
        cold_start: [.cold_start[] | {ratings, rmse, item_mean_rmse, scored}]}' \
        "$tmp.run" | tee -a "$tmp"
done
jq -s -c '{mean_over_splits: [range(0; 5) as $i |
    {ratings: .[0].cold_start[$i].ratings,
     rmse: ([.[].cold_start[$i].rmse] | add / length),
     item_mean_rmse: ([.[].cold_start[$i].item_mean_rmse] | add / length)}]}
    | . + {gain_at_5: (1 - .mean_over_splits[2].rmse
                           / .mean_over_splits[2].item_mean_rmse)}' "$tmp"
