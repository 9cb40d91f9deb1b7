#!/bin/sh
# Privacy-utility table on ML-100K u1 (docs/BENCHMARKS.md, "Privacy"):
# gradient FedAvg (settings chosen on a 90/10 split of u1.base) plain and
# under each defence; per row the final test RMSE, the aggregator's
# item-inference AUC, rating-reconstruction RMSE, epsilon, in-round seconds
# per round (wall; and CPU: the aggregator's, one client's median and max)
# and bytes up per client update. Prints ONE JSON object and
# writes docs/privacy-utility.svg (RMSE and attack AUC per defence).
# Env: FR_DATA_DIR, FR_BUILD_DIR (build), FR_PRIV_ROUNDS (40),
# FR_PRIV_COHORT (50), FR_PRIV_Z (0.665: epsilon 8 at q = 50/943, 40 rounds),
# FR_PRIV_SA_CLIP (50: the clip of the secure-aggregation rows, chosen on
# the validation split), FR_PRIV_SVG (output path), FR_PRIV_VALID=1 (tune:
# train on a seeded 90% of u1.base, evaluate on the other 10%; u1.test is
# not read).
set -eu
bench_name=privacy.sh
. "$(dirname "$0")/lib.sh"
bin=$(bench_tool fedrec-sim)
svg=${FR_PRIV_SVG:-$root/docs/privacy-utility.svg}
rounds=${FR_PRIV_ROUNDS:-40}
cohort=${FR_PRIV_COHORT:-50}
z=${FR_PRIV_Z:-0.665}
saclip=${FR_PRIV_SA_CLIP:-50}
bench_need_ml100k
tmp=$(mktemp)
vdir=$(mktemp -d)
trap 'rm -rf "$tmp" "$vdir"' EXIT
train=$data/u1.base test=$data/u1.test
if [ "${FR_PRIV_VALID:-0}" = 1 ]; then
    awk -v b="$vdir/base" -v t="$vdir/test" 'BEGIN { srand(7) }
        { if (rand() < 0.1) print > t; else print > b }' "$data/u1.base"
    train=$vdir/base test=$vdir/test
    svg=${FR_PRIV_SVG:-/dev/null}
fi
base="--train $train --test $test --algo grad --server-opt adam
 --lr 0.03 --reg 2 --reg-bias 1 --rounds $rounds --clients-per-round $cohort
 --no-reference --json --transport direct --eval-every 0 --attack both"
row() { # name, extra flags
    # shellcheck disable=SC2086
    "$bin" $base $2 | tail -1 | jq -c --arg n "$1" --arg a "$2" '{name: $n,
      flags: $a, rmse, attack_auc, attack_rating_rmse, epsilon, delta,
      round_s: (.seconds / .rounds), agg_s: .agg_seconds_per_round,
      client_s_median: .client_seconds_median,
      client_s_max: .client_seconds_max, bytes_up_per_client:
      (.bytes_up / .clients)}' >>"$tmp"
}
row plain ""
row clip "--clip 1"
row clip-$saclip "--clip $saclip"
row secagg-full "--secure-agg full --clip $saclip"
row secagg-plus "--secure-agg plus --clip $saclip"
row secagg-full-clip1 "--secure-agg full --clip 1"
row pseudo-rho1 "--pseudo-items 1"
row dp-central "--clip 1 --dp central --noise-multiplier $z"
row dp-distributed "--secure-agg full --clip 1 --dp distributed --noise-multiplier $z"
jq -s --arg d "ml-100k u1$([ "${FR_PRIV_VALID:-0}" = 1 ] && echo ' (validation: 90/10 of u1.base)')" '{bench: "privacy", data: $d, rows: .}' "$tmp"
# SVG: one pair of bars (RMSE, attack AUC) per defence.
jq -r '[.name, .rmse, (.attack_auc // 0)] | @tsv' "$tmp" | awk -F'\t' '
BEGIN { w = 980; h = 360; x0 = 60; y0 = 300; }
{ n[NR] = $1; r[NR] = $2; a[NR] = $3; }
END {
  printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"11\">\n", w, h
  printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
  printf "<text x=\"%d\" y=\"20\" font-size=\"14\">ML-100K u1, gradient FedAvg: test RMSE (blue) and item-inference attack AUC (orange; dashed: 0.5 = chance)</text>\n", x0
  printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", x0, y0, w - 20, y0
  for (t = 0; t <= 1.2001; t += 0.2) {
    y = y0 - t / 1.2 * 250
    printf "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/><text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.1f</text>\n", x0, y, w - 20, y, x0 - 4, y + 4, t
  }
  y = y0 - 0.5 / 1.2 * 250
  printf "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e67e22\" stroke-dasharray=\"4 3\"/>\n", x0, y, w - 20, y
  step = (w - 20 - x0) / NR
  for (i = 1; i <= NR; i++) {
    x = x0 + (i - 1) * step + step * 0.15
    bw = step * 0.33
    hr = r[i] / 1.2 * 250; ha = a[i] / 1.2 * 250
    printf "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#3465a4\"/>\n", x, y0 - hr, bw, hr
    printf "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"10\" fill=\"white\">%.3f</text>\n", x + bw / 2, y0 - hr + 12, r[i]
    printf "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#e67e22\"/>\n", x + bw, y0 - ha, bw, ha
    printf "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"10\" fill=\"white\">%.2f</text>\n", x + 1.5 * bw, y0 - ha + 12, a[i]
    printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"10\">%s</text>\n", x + bw, y0 + 16 + (i % 2) * 12, n[i]
  }
  printf "</svg>\n"
}' >"$svg"
