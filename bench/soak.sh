#!/usr/bin/env bash
# Soak run: fedrec-sim with USERS (default 1000) virtual devices on seeded
# synthetic data, every message over real NNG tcp sockets on loopback to
# the real aggregator (in the same process), training round after round
# for DURATION seconds (default 1200). Samples the process's resident set
# and open file descriptors every INTERVAL seconds (default 10) and prints
# one JSON line per sample, then a summary: RSS after warm-up (the first
# 10% of the samples) against the end and the maximum, and the largest fd
# count of each half of the run (devices open and close sockets all the
# time, so single samples move by a few). "flat" is true when the last RSS
# is within 10% (+1 MiB) of the warm-up RSS and the second half never
# held more descriptors than the first. The run is
# bounded: the simulator is killed at DURATION whatever it is doing.
# Env: FR_BUILD_DIR (default build), USERS, DURATION, INTERVAL, ALGO
# (default als, which keeps rounds short).
set -uo pipefail
cd "$(dirname "$0")/.."
dir=${FR_BUILD_DIR:-build}
users=${USERS:-1000}
duration=${DURATION:-1200}
interval=${INTERVAL:-10}
algo=${ALGO:-als}
bin=$dir/bin/fedrec-sim
[ -x "$bin" ] || { echo "soak.sh: build $bin first" >&2; exit 2; }
out=$(mktemp /tmp/fr-soak-XXXXXX)
trap 'kill -9 "$pid" 2>/dev/null; rm -f "$out"' EXIT
"$bin" --synthetic "users=$users,items=500,density=0.03,seed=5" \
  --transport tcp --algo "$algo" --rounds 1000000 --eval-every 0 \
  --no-reference --json --quiet >"$out" 2>&1 &
pid=$!
start=$(date +%s)
samples=()
while :; do
  sleep "$interval"
  now=$(( $(date +%s) - start ))
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "soak.sh: the simulator exited after ${now} s:" >&2
    tail -5 "$out" >&2
    exit 1
  fi
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
  fds=$(ls "/proc/$pid/fd" | wc -l)
  rounds=$(grep -c '"round"' "$out" || true)
  printf '{"t":%d,"rss_kib":%d,"fds":%d,"rounds":%d}\n' "$now" "$rss" "$fds" "$rounds"
  samples+=("$now $rss $fds $rounds")
  [ "$now" -ge "$duration" ] && break
done
kill -TERM "$pid" 2>/dev/null
printf '%s\n' "${samples[@]}" | awk -v users="$users" -v dur="$duration" '
  { t[NR] = $1; r[NR] = $2; f[NR] = $3; n[NR] = $4 }
  END {
    w = int(NR / 10); if (w < 1) w = 1
    mr = 0; f1 = 0; f2 = 0; h = int(NR / 2)
    for (i = 1; i <= NR; i++) {
      if (r[i] > mr) mr = r[i]
      if (i <= h) { if (f[i] > f1) f1 = f[i] } else { if (f[i] > f2) f2 = f[i] }
    }
    flat = (r[NR] <= r[w] * 1.10 + 1024 && f2 <= f1) ? "true" : "false"
    printf "{\"users\":%d,\"duration_s\":%d,\"samples\":%d,\"rounds\":%d,", users, dur, NR, n[NR]
    printf "\"rss_warm_kib\":%d,\"rss_end_kib\":%d,\"rss_max_kib\":%d,", r[w], r[NR], mr
    printf "\"fds_max_first_half\":%d,\"fds_max_second_half\":%d,\"flat\":%s}\n", f1, f2, flat
  }'
