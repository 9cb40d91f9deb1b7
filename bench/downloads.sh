#!/bin/sh
# Model downloads per format (issue 11 item 3): the federated default on
# ML-100K uN.base/uN.test with --model-format fp32, fp16 and int8 (the
# compact I8C frame: f16 biases, int8 rows with an f16 scale, 8-bit log
# codes for VBMF's item variances; auto serves it). One JSON line per
# split and format (rmse, bytes down per check-in, ratio to fp32), then
# the per-format means and the largest RMSE change against fp32.
# Env: FR_DATA_DIR, FR_BUILD_DIR (build), SPLITS ("1 2 3 4 5"),
# FORMATS ("fp32 fp16 int8"; fp32 first: the ratios need it), EXTRA
# (more fedrec-sim flags, e.g. "--fraction 0.1 --dropout 0.1").
set -eu
bench_name=downloads.sh
. "$(dirname "$0")/lib.sh"
bin=$(bench_tool fedrec-sim)
bench_need_ml100k
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
for s in ${SPLITS:-1 2 3 4 5}; do
    base=
    for f in ${FORMATS:-fp32 fp16 int8}; do
        # shellcheck disable=SC2086
        line=$("$bin" --train "$data/u$s.base" --test "$data/u$s.test" \
            --model-format "$f" --json --quiet --no-reference ${EXTRA:-} |
            tail -1 | jq -c --arg s "u$s" --arg f "$f" \
            '{split: $s, format: $f, rmse, rounds,
              bytes_down_per_checkin: (.bytes_down / .clients | floor)}')
        if [ -z "$base" ]; then
            base=$line
        fi
        echo "$line" | jq -c --argjson b "$base" \
            '. + {vs_fp32: (.bytes_down_per_checkin / $b.bytes_down_per_checkin
                            * 10000 | round / 10000),
                  rmse_change_percent: ((.rmse / $b.rmse - 1) * 1e5
                            | round / 1000)}' | tee -a "$tmp"
    done
done
jq -s -c 'group_by(.format) | map({format: .[0].format,
    mean_rmse: (map(.rmse) | add / length),
    mean_vs_fp32: (map(.vs_fp32) | add / length),
    max_abs_rmse_change_percent: (map(.rmse_change_percent | fabs) | max)})
    | {formats: .}' "$tmp"
