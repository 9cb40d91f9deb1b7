#!/usr/bin/env bash
# 10,000 concurrent device connections on loopback to one fedrec-aggregator:
# every connection completes a HELLO/WELCOME handshake with its own device
# key and all are held open at once; prints JSON with the client's error
# counts and the aggregator's open file descriptors while they are held.
# Env: FR_BUILD_DIR (default build), N (default 10000), HOLD (seconds, 5).
# Bounded: the client times out each request at 10 s, the script at 300 s.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${FR_BUILD_DIR:-build}
n=${N:-10000}
hold=${HOLD:-5}
ulimit -n "$(ulimit -Hn)"
for t in fedrec-aggregator fedrec-bench-conns fedrec-keygen; do
  [ -x "$dir/bin/$t" ] || { echo "build $dir/bin/$t first" >&2; exit 2; }
done
work=$(mktemp -d /tmp/fr-conns-XXXXXX)
agg=
cleanup() { [ -n "$agg" ] && kill "$agg" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
"$dir/bin/fedrec-keygen" --out "$work/agg" >/dev/null
port=$((21000 + RANDOM % 8000))
# All devices share 127.0.0.1: the per-address HELLO rate is lifted.
"$dir/bin/fedrec-aggregator" --listen "tcp://127.0.0.1:$port" \
  --key "$work/agg.key" --items 100 --max-sessions $((n + 1000)) \
  --max-connections $((n + 1000)) --hello-rate 0 --log-level warn \
  2>"$work/agg.log" &
agg=$!
sleep 0.5
timeout 300 "$dir/bin/fedrec-bench-conns" --connect "tcp://127.0.0.1:$port" \
  --server-key "$work/agg.pub" -n "$n" --hold "$hold" \
  >"$work/out.json" 2>"$work/client.log" &
cli=$!
# Sample the aggregator's fds and RSS while the connections are held.
fds=0; rss=0
for _ in $(seq 1 600); do
  if grep -q "connections up" "$work/client.log" 2>/dev/null; then
    sleep 1
    fds=$(ls /proc/$agg/fd | wc -l)
    rss=$(awk '/VmRSS/ {print $2}' /proc/$agg/status)
    break
  fi
  kill -0 $cli 2>/dev/null || break
  sleep 0.5
done
rc=0; wait $cli || rc=$?
alive=0; kill -0 "$agg" 2>/dev/null && alive=1
out=$(cat "$work/out.json")
echo "${out%\}},\"aggregator_fds_held\":$fds,\"aggregator_rss_kb\":$rss,\"aggregator_alive\":$alive,\"client_rc\":$rc}"
