#!/bin/sh
# fedrec-sim benchmark; prints ONE JSON object.
#  quality: ML-100K u1..u5, 943 virtual clients, all per round, default
#           (tuned, validation-chosen) settings, inproc NNG with full
#           encryption: per-fold federated test RMSE next to the in-process
#           centralized reference (fedrec-train's default, BPMF, same
#           split; centralized ALS and VBMF are reported beside it).
#  speed:   u1 over inproc NNG: wall seconds of the whole process and the
#           in-round seconds until the first round with test RMSE <= 0.930;
#           time per client update next to the raw XChaCha20-Poly1305 +
#           memcpy cost of its bytes.
#  scale:   (FR_BENCH_SCALE=1) synthetic 1,000,000 registered clients,
#           10,000 per round: peak RSS, bytes per idle client, rounds/s.
# Env: FR_DATA_DIR (default ../shared/data/ml-100k), FR_BUILD_DIR (build),
# FR_BENCH_SCALE (0). Extra arguments go to every fedrec-sim run.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
data=${FR_DATA_DIR:-$root/../shared/data/ml-100k}
build=${FR_BUILD_DIR:-$root/build}
case $build in /*) ;; *) build=$root/$build ;; esac
bin=$build/bin/fedrec-sim
if [ ! -x "$bin" ]; then
    if [ ! -f "$build/CMakeCache.txt" ]; then
        cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    fi
    cmake --build "$build" --target fedrec-sim -j2 >/dev/null
fi
for f in 1 2 3 4 5; do
    if [ ! -r "$data/u$f.base" ] || [ ! -r "$data/u$f.test" ]; then
        echo "sim.sh: MovieLens 100K not found in $data (set FR_DATA_DIR)" >&2
        exit 1
    fi
done
now() { date +%s.%N; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for f in 1 2 3 4 5; do
    t0=$(now)
    "$bin" --train "$data/u$f.base" --test "$data/u$f.test" \
        --transport inproc --json --no-progress "$@" > "$tmp/u$f.jsonl"
    t1=$(now)
    echo "$t0 $t1" > "$tmp/u$f.time"
done
scale=""
if [ "${FR_BENCH_SCALE:-0}" = 1 ]; then
    t0=$(now)
    "$bin" --synthetic users=1000000,items=20000,density=0.001,seed=3 \
        --clients-per-round 10000 --rounds 3 --no-reference --shared-model \
        --eval-users 10000 --transport inproc --json --no-progress "$@" \
        | tail -n 1 > "$tmp/scale.json"
    t1=$(now)
    scale=$(awk -v t0="$t0" -v t1="$t1" '{ sub(/}$/, ""); printf "%s,\"wall_seconds\":%.2f}", $0, t1 - t0 }' "$tmp/scale.json")
fi
awk -v scale="$scale" -v dir="$tmp" '
function num(s, key,   i, t) {
    i = index(s, "\"" key "\":"); if (i == 0) return "null"
    t = substr(s, i + length(key) + 3); sub(/[,}].*/, "", t); return t
}
BEGIN {
    printf "{\"folds\":["
    for (f = 1; f <= 5; f++) {
        file = dir "/u" f ".jsonl"; secs = 0; hit = "null"; last = ""
        while ((getline line < file) > 0) {
            if (index(line, "\"summary\":true")) { last = line; continue }
            secs += num(line, "seconds"); r = num(line, "rmse")
            if (hit == "null" && r != "null" && r + 0 <= 0.930) hit = secs
        }
        close(file)
        getline tl < (dir "/u" f ".time"); split(tl, tt, " ")
        rm = num(last, "rmse"); ref = num(last, "ref_rmse")
        sr += rm; sref += ref
        printf "%s{\"fold\":\"u%d\",\"rmse\":%s,\"mae\":%s,\"ref_rmse\":%s,\"gap_pct\":%.3f,\"rounds\":%s,\"wall_seconds\":%.2f,\"round_seconds_to_rmse_0.930\":%s,\"us_per_update\":%s,\"us_crypto_per_update\":%s,\"us_memcpy_per_update\":%s,\"bytes_up\":%s,\"bytes_down\":%s}", \
            (f > 1 ? "," : ""), f, rm, num(last, "mae"), ref, \
            100 * (rm - ref) / ref, num(last, "rounds"), tt[2] - tt[1], hit, \
            num(last, "us_per_update"), num(last, "us_crypto_per_update"), \
            num(last, "us_memcpy_per_update"), num(last, "bytes_up"), \
            num(last, "bytes_down")
    }
    mr = sr / 5; mref = sref / 5
    printf "],\"mean_rmse\":%.4f,\"mean_ref_rmse\":%.4f,\"mean_gap_pct\":%.3f,\"target_rmse_0.910\":%s,\"target_within_0.5pct\":%s", \
        mr, mref, 100 * (mr - mref) / mref, (mr <= 0.910 ? "true" : "false"), \
        ((mr - mref) / mref <= 0.005 ? "true" : "false")
    if (scale != "") printf ",\"scale\":%s", scale
    printf "}\n"
}'
