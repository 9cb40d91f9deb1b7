#!/bin/sh
# Poisoning attacks against robust aggregation on ML-100K u1
# (docs/BENCHMARKS.md, "Robust aggregation"): for each attack, 1% and 5%
# malicious devices, with the aggregator's robust bounds (default) and
# without (--robust off): final test RMSE, target_er5 and target_hr10 of
# the promoted item among the honest evaluating devices. Prints one JSON
# line per run (the name, the exact flags and the figures) and, with
# FR_ATK_TABLE=1, the Markdown table of docs/BENCHMARKS.md after them.
# Env: FR_DATA_DIR, FR_BUILD_DIR (build), FR_ATK_ALGO (vbmf; als, grad),
# FR_ATK_TARGET (the promoted item, a simulator item index), FR_ATK_KINDS
# (the attacks to run). Every run uses --transport direct (the same
# model as inproc, tests/sim/test_sim.c); ~20 s per VBMF run on 2 cores.
set -eu
bench_name=attacks.sh
. "$(dirname "$0")/lib.sh"
bin=$(bench_tool fedrec-sim)
algo=${FR_ATK_ALGO:-vbmf}
target=${FR_ATK_TARGET:-300}
kinds=${FR_ATK_KINDS:-"promote scale signflip random absurd"}
bench_need_ml100k
tmp=$(mktemp)
trap 'rm -f "$tmp" "$tmp.err"' EXIT
base="--train $data/u1.base --test $data/u1.test --algo $algo
 --target-item $target --transport direct --eval-every 0 --json --no-reference
 --quiet"
row() { # name, extra flags
    # A run the attack stops prints no summary: its error is the row.
    # shellcheck disable=SC2086
    if out=$("$bin" $base $2 2>"$tmp.err"); then
        printf '%s\n' "$out" | tail -1 | jq -c --arg n "$1" --arg a "$2" \
          '{name: $n, flags: $a, algo, robust, malicious, rmse, target_er5,
            target_hr10, target_users, target_ratings, malicious_devices,
            poisoned_updates, refused_updates, seconds}' | tee -a "$tmp"
    else
        jq -cn --arg n "$1" --arg a "$2" --arg e "$(tail -1 "$tmp.err")" \
          '{name: $n, flags: $a, robust: ($a | test("robust on")),
            malicious: ($a | capture("malicious (?<m>[0-9.]+)").m
                        | tonumber), rmse: null, target_er5: null,
            target_hr10: null, error: $e}' | tee -a "$tmp"
    fi
}
for rb in on off; do
    row "none/robust-$rb" "--robust $rb"
done
for k in $kinds; do
    for m in 0.01 0.05; do
        for rb in on off; do
            row "$k/$m/robust-$rb" "--attack $k --malicious $m --robust $rb"
        done
    done
done
if [ "${FR_ATK_TABLE:-0}" = 1 ]; then
    echo
    echo "| attack | malicious | robust | RMSE | target_er5 | target_hr10 |"
    echo "|---|---|---|---|---|---|"
    jq -r '"| \(.name | split("/")[0]) | \(.malicious // 0) | \(if .robust then "on" else "off" end) | \(if .error then "stopped: " + .error else (.rmse | tostring) end) | \(.target_er5) | \(.target_hr10) |"' "$tmp"
fi
