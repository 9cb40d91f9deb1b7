#!/bin/sh
# Centralized baseline on MovieLens 100K u1..u5: trains fedrec-train on each
# uN.base, evaluates on uN.test and prints ONE JSON object with per-fold
# rmse/mae/seconds and their means. Extra arguments go to fedrec-train
# (e.g. --algo sgd). Env: FR_DATA_DIR (default ../shared/data/ml-100k from
# the repository root), FR_BUILD_DIR (default build).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
data=${FR_DATA_DIR:-$root/../shared/data/ml-100k}
build=${FR_BUILD_DIR:-$root/build}
case $build in /*) ;; *) build=$root/$build ;; esac
bin=$build/bin/fedrec-train
if [ ! -x "$bin" ]; then
    if [ ! -f "$build/CMakeCache.txt" ]; then
        cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    fi
    cmake --build "$build" --target fedrec-train -j2 >/dev/null
fi
for f in 1 2 3 4 5; do
    if [ ! -r "$data/u$f.base" ] || [ ! -r "$data/u$f.test" ]; then
        echo "centralized.sh: MovieLens 100K not found in $data (set FR_DATA_DIR)" >&2
        exit 1
    fi
done
out=""
for f in 1 2 3 4 5; do
    line=$("$bin" --train "$data/u$f.base" --test "$data/u$f.test" --json "$@" | tail -n 1)
    out="$out$line
"
done
printf '%s' "$out" | awk '
function num(s, key,   i, t) {
    i = index(s, "\"" key "\":"); if (i == 0) return "null"
    t = substr(s, i + length(key) + 3); sub(/[,}].*/, "", t); return t
}
function str(s, key,   i, t) {
    i = index(s, "\"" key "\":\""); if (i == 0) return ""
    t = substr(s, i + length(key) + 4); sub(/".*/, "", t); return t
}
{
    n++; r[n] = num($0, "rmse"); m[n] = num($0, "mae"); s[n] = num($0, "seconds")
    sr += r[n]; sm += m[n]; ss += s[n]
    if (s[n] > smax) smax = s[n]
    if (n == 1) cfg = sprintf("\"algo\":\"%s\",\"loss\":\"%s\",\"k\":%s,\"epochs\":%s,\"reg\":%s,\"reg_bias\":%s,\"weighted\":%s", str($0, "algo"), str($0, "loss"), num($0, "k"), num($0, "epochs"), num($0, "reg"), num($0, "reg_bias"), num($0, "weighted"))
}
END {
    printf "{%s,\"folds\":[", cfg
    for (i = 1; i <= n; i++)
        printf "%s{\"fold\":\"u%d\",\"rmse\":%s,\"mae\":%s,\"seconds\":%s}", (i > 1 ? "," : ""), i, r[i], m[i], s[i]
    printf "],\"mean\":{\"rmse\":%.6f,\"mae\":%.6f,\"seconds\":%.4f},\"max_seconds\":%.4f}\n", sr / n, sm / n, ss / n, smax
}'
